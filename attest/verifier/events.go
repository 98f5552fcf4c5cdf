// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/store"
)

// Event types: the notable changes of an agent, kept in the store's
// outbox (webhooks) and shown as its timeline.
const (
	EventEnrolled = "enrolled" // enrolled, not yet attested
	EventTrusted  = "trusted"  // became trusted
	EventFailed   = "failed"   // became failed, or its failure kind changed
	// EventUnreachable: the agent stopped answering (not a failure); a
	// trusted event follows when it answers again with good evidence.
	EventUnreachable = "unreachable"
	EventReboot      = "reboot"  // the TPM was reset: a new boot is attested from its first record
	EventRemoved     = "removed" // removed by the operator
	// EventReactivated: an operator cleared the agent's security failure
	// (Verifier.Reactivate); attestation starts again.
	EventReactivated = "reactivated"
	// EventGap: the agent rebooted after a gap in attestation and is in
	// the gap-after-reboot state until acknowledged.
	EventGap          = "gap-after-reboot"
	EventAcknowledged = "acknowledged" // an operator acknowledged the gap
)

// Notification is an event's body: what a webhook receiver is sent, as
// stored (the bytes are signed). EAR is the agent's signed attestation
// result at the event (none for a removal).
type Notification struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Agent    string    `json:"agent"`
	Time     time.Time `json:"time"`
	State    string    `json:"state,omitempty"`
	Previous string    `json:"previous_state,omitempty"`
	Kind     string    `json:"kind,omitempty"`
	Reasons  []string  `json:"reasons,omitempty"`
	EAR      string    `json:"ear,omitempty"`
}

// DefaultVerifierID is the ear.verifier-id unless Options.VerifierID
// says otherwise.
var DefaultVerifierID = ear.VerifierID{Developer: "https://github.com/intactsec/intact", Build: "intact-verifier"}

// EARMediaType is the media type of a signed EAR.
const EARMediaType = `application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"`

// reasonCode is the reason code of a failure reason ("policy: /x: ..."
// -> "policy").
func reasonCode(r string) string {
	code, _, _ := strings.Cut(r, ":")
	return code
}

// policyPath is the file of a policy failure reason
// ("policy: PATH: REASON (record N, DIGEST)").
func policyPath(r string) (string, bool) {
	rest, ok := strings.CutPrefix(r, ReasonPolicy+": ")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(rest, " (record ")
	if i < 0 {
		return "", false
	}
	j := strings.LastIndex(rest[:i], ": ")
	if j <= 0 {
		return "", false
	}
	return rest[:j], true
}

// EARAppraisal maps an agent's status to an EAR appraisal (AR4SI
// trustworthiness vector, tier, intact's reasons). See
// docs/attestation.md, "Attestation results (EAR)".
func EARAppraisal(policy string, st store.Status) ear.Appraisal {
	ap := ear.Appraisal{Status: ear.StatusNone, State: st.State, Kind: st.Kind, Reasons: st.Reasons,
		Attestations: st.Attestations, LogOffset: st.Progress.LogOffset}
	if policy != "" {
		ap.PolicyID = "intact:runtime-policy/" + policy
	}
	if !st.LastAttested.IsZero() {
		ap.LastAttested = st.LastAttested.Unix()
	}
	switch {
	case st.State == store.StateTrusted:
		// The quote verified with the AK activated against the EK, and
		// every measured file is in the runtime policy.
		// The EK was trusted at enrollment (a maker's chain or the
		// allowlist): hardware. A boot log that met the agent's
		// measured-boot policy: configuration.
		ap.Vector = &ear.TrustVector{InstanceIdentity: ear.IdentityTrustworthy, Executables: ear.ExecApprovedRuntime,
			Hardware: ear.HardwareGenuine}
		if st.Progress.BootLog == store.BootLogJudged {
			ap.Vector.Configuration = ear.ConfigApproved
		}
		ap.Status = ap.Vector.Worst()
	case st.State == store.StateGap:
		// The evidence verifies, but what ran before the reboot, after the
		// last verified quote, is unknown.
		ap.Vector = &ear.TrustVector{InstanceIdentity: ear.IdentityTrustworthy, Executables: ear.ExecUnrecognized}
		ap.Reason = ReasonGap
		ap.Status = ear.StatusWarning
	case st.State == store.StateFailed && st.Kind == store.KindSecurity:
		tv := &ear.TrustVector{InstanceIdentity: ear.IdentityTrustworthy, Hardware: ear.HardwareGenuine}
		if len(st.Reasons) > 0 {
			ap.Reason = reasonCode(st.Reasons[0])
		}
		switch ap.Reason {
		case ReasonQuoteSignature, ReasonQuoteMalformed, ReasonQuoteSelection, ReasonPCRDigest, ReasonAK:
			tv.InstanceIdentity = ear.CryptoValidationFailed
		case ReasonQuoteNonce, ReasonClock:
			tv.InstanceIdentity = ear.IdentityUntrustworthy
		case ReasonLogOffset, ReasonLogMalformed, ReasonLogTemplateHash, ReasonLogReplay:
			tv.Executables = ear.CryptoValidationFailed
		case ReasonBootAggregate, ReasonBootLog:
			tv.Configuration = ear.CryptoValidationFailed
		case ReasonBootPolicy:
			// The boot is not the policy's: its configuration always; its
			// executables when a boot component is unknown.
			tv.Configuration = ear.ConfigContraindicated
			for _, r := range st.Reasons {
				for _, k := range []string{bootpolicy.ReasonDigest, bootpolicy.ReasonExtra, bootpolicy.ReasonMissing, bootpolicy.ReasonType} {
					if strings.Contains(r, "): "+k+": ") || strings.Contains(r, ": "+k+": ") {
						tv.Executables = ear.ExecUnrecognized
					}
				}
			}
		case ReasonLogPCR:
			tv.Configuration = ear.ConfigContraindicated
		case ReasonDuplicateTPM:
			tv.InstanceIdentity = ear.IdentityUntrustworthy
		case ReasonPolicy:
			tv.Executables = ear.ExecUnrecognized
			for _, r := range st.Reasons {
				if p, ok := policyPath(r); ok {
					ap.Paths = append(ap.Paths, p)
					if strings.Contains(r, ": violation (record ") {
						tv.FileSystem = ear.FileSystemUnrecognized
					}
				}
			}
		case ReasonEnrollment:
			tv.InstanceIdentity = ear.IdentityUnrecognized
		default:
			tv.InstanceIdentity = ear.UnexpectedEvidence
		}
		ap.Vector = tv
		// A security failure stops attestation: the agent as a whole is
		// contraindicated whatever the component's tier.
		ap.Status = ear.StatusContraindicated
	case st.State == store.StateFailed, st.State == store.StateUnreachable:
		// Operational (the agent answered an error: TPM busy, not the
		// protocol) or unreachable (no answer): no fresh evidence.
		ap.Status = ear.StatusWarning
	}
	return ap
}

// EAR is the EAR of an agent (one submod, named by its id) at now.
func (v *Verifier) EAR(a *store.Agent, now time.Time) *ear.Result {
	return &ear.Result{Profile: ear.Profile, IssuedAt: now.Unix(), VerifierID: v.o.VerifierID,
		Submods: map[string]ear.Appraisal{a.ID: EARAppraisal(a.Policy, a.Status)}}
}

// SignedEAR is the agent's EAR signed with the verifier's key.
func (v *Verifier) SignedEAR(a *store.Agent, now time.Time) (string, error) {
	return ear.Sign(v.EAR(a, now), v.o.EARKey, v.o.Rand)
}

// EARKey is the public key EARs are signed with.
func (v *Verifier) EARKey() *ecdsa.PublicKey { return &v.o.EARKey.PublicKey }

// newEvent makes an event of agent a (with status st) for the outbox.
// It does not fail: an EAR that cannot be signed is left out of the
// notification (and logged), the state change is still told.
func (v *Verifier) newEvent(typ string, a *store.Agent, st store.Status, previous string, now time.Time) store.Event {
	// Event ids come from the system's generator, not Options.Rand: a
	// repeated id would fail the whole batch of results it is stored with.
	// (crypto/rand.Read never fails.)
	id := make([]byte, 16)
	rand.Read(id)
	n := Notification{ID: hex.EncodeToString(id), Type: typ, Agent: a.ID, Time: now, Previous: previous}
	if typ != EventRemoved {
		n.State, n.Kind, n.Reasons = st.State, st.Kind, st.Reasons
		ag := *a
		ag.Status = st
		tok, err := v.SignedEAR(&ag, now)
		if err != nil {
			v.log.Error("signing the attestation result of an event; sent without it", "agent", a.ID, "type", typ, "err", err)
		}
		n.EAR = tok
	}
	body, err := json.Marshal(&n)
	if err != nil { // strings, a time and a string slice: cannot happen
		panic(err)
	}
	return store.Event{ID: n.ID, AgentID: a.ID, Type: typ, Time: now, Body: body}
}

func (v *Verifier) wake() {
	if v.hooks != nil {
		v.hooks.Wake()
	}
}

// maxTimeline bounds the events an agent view shows.
const maxTimeline = 100

// Timeline is an agent's events since its enrollment, oldest first (the
// newest maxTimeline), without their EARs.
func (v *Verifier) Timeline(ctx context.Context, a *store.Agent) ([]Notification, error) {
	evs, err := v.o.Store.AgentEvents(ctx, a.ID, a.Created, maxTimeline)
	if err != nil {
		return nil, err
	}
	out := make([]Notification, 0, len(evs))
	for _, e := range evs {
		var n Notification
		if err := json.Unmarshal(e.Body, &n); err != nil {
			return nil, fmt.Errorf("stored event %s: %w", e.ID, err)
		}
		n.EAR = ""
		out = append(out, n)
	}
	return out, nil
}
