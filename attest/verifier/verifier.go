// SPDX-License-Identifier: Apache-2.0

// Package verifier is intact's remote-attestation verifier: it enrolls
// agents (credential activation against the EK), attests each enrolled
// agent at an interval (fresh nonce, quote by the enrolled AK, TPM clock
// and reboots, incremental replay of the measurement list, the
// boot_aggregate, the runtime policy on every verified record) and keeps
// their state and history in a store.Store.
//
// Results come from [EvidenceAppraiser.Appraise] only for verified evidence;
// evidence that does not verify is a *SecurityError (the agent fails and
// its attestation stops), distinct from an agent that did not answer (an
// *UnreachableError: the agent is unreachable) and from other operational
// errors (an answer that is not evidence: failed, operational).
//
// Each change of an agent (enrolled, trusted, failed, reboot, removed) is
// an event in the store's outbox, with the agent's attestation result as
// a signed EAR (package attest/ear); webhooks (package attest/webhook)
// deliver the outbox, and the events are the agent's timeline.
package verifier

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/store"
)

// Options configure a Verifier.
type Options struct {
	Store    store.Store
	Logger   *slog.Logger
	Interval time.Duration // between attestations of an agent (default 2s)
	Timeout  time.Duration // per agent request (default 10s)
	Rand     io.Reader     // nonces and credentials (default crypto/rand)
	Now      func() time.Time
	// FlushEvery bounds how long attestation results wait to be written
	// in a batch (default 500ms).
	FlushEvery time.Duration
	// HistoryHeartbeat: an agent's history keeps each change of outcome
	// (state, failure kind, reasons) and, while the outcome stays the
	// same, one result per HistoryHeartbeat plus the agent's jitter
	// (store.HeartbeatJitter; default 1h; negative: none).
	// The agent's status always has the latest result. See store.Update.
	HistoryHeartbeat time.Duration
	// PolicySigners, when set, makes every runtime policy a signed
	// envelope (rtpolicy.Sign) that must verify with one of these
	// certificates, when put and when loaded from the store.
	PolicySigners *sig.Keyring
	// EARKey signs attestation results (ECDSA P-256); nil: a key made
	// for this process.
	EARKey *ecdsa.PrivateKey
	// VerifierID is the results' ear.verifier-id (default
	// DefaultVerifierID).
	VerifierID ear.VerifierID
	// Webhooks are sent every event (state changes, reboots,
	// enrollments, removals) in order, at least once, from the store's
	// outbox; WebhookBase and WebhookMax bound the backoff between
	// attempts (default 1s and 5m). With Leases, one replica at a time
	// delivers to each receiver (webhook.Options.Leases).
	Webhooks                []webhook.Receiver
	WebhookBase, WebhookMax time.Duration
	// EKTrust gives the EK CA store and allowlist an enrolling agent's
	// endorsement key must satisfy (EKTrustFiles); nil: every
	// enrollment is refused (ReasonEKUntrusted).
	EKTrust EKTrustFunc
	// MaxAttestRecords and MaxAttestBytes bound the measurement list one
	// attestation replays (default DefaultMaxRecords, DefaultMaxBytes):
	// an agent that sends more without reaching its quoted PCR fails
	// with log-replay, a security failure.
	MaxAttestRecords, MaxAttestBytes int64
	// Leases, when the store is shared by several replicas (a
	// store.Leaser, with Replica this replica's name), make this verifier
	// attest only the agents whose lease it holds (lease.go).
	Leases  store.Leaser
	Replica string
	// ClientCert is the certificate (and key) the verifier presents to
	// its agents (mutual TLS): an agent pins it at enrollment and
	// answers no other client. It must stay the same across restarts
	// (serve uses verifier.crt); nil: a certificate made for this
	// process, for tests.
	ClientCert *tls.Certificate
}

// DefaultHistoryHeartbeat is how often an agent whose outcome does not
// change gets a history row, unless Options.HistoryHeartbeat says
// otherwise.
const DefaultHistoryHeartbeat = time.Hour

// Verifier attests enrolled agents.
type Verifier struct {
	o      Options
	log    *slog.Logger
	writes chan write

	enrollMu sync.Mutex // the duplicate-tpm check and the creation of an agent
	mu       sync.Mutex
	runners  map[string]*runner
	policies map[string]*rtpolicy.Compiled
	// bootPolicies caches measured-boot policies by name.
	bootPolicies map[string]*bootpolicy.Compiled
	ctx          context.Context
	wg           sync.WaitGroup

	hooks *webhook.Deliverer // nil without webhooks
	m     *metrics           // metrics.go
}

// New returns a verifier. With webhooks it registers their receivers in
// the store (a new receiver gets the events from now on).
func New(o Options) (*Verifier, error) {
	if o.Store == nil {
		return nil, errors.New("verifier: no store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 500 * time.Millisecond
	}
	switch {
	case o.HistoryHeartbeat == 0:
		o.HistoryHeartbeat = DefaultHistoryHeartbeat
	case o.HistoryHeartbeat < 0:
		o.HistoryHeartbeat = 0 // store.Update: changes only
	}
	if o.EARKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		o.EARKey = k
	}
	if o.EARKey.Curve != elliptic.P256() {
		return nil, fmt.Errorf("verifier: %w", ear.ErrKey)
	}
	if o.VerifierID == (ear.VerifierID{}) {
		o.VerifierID = DefaultVerifierID
	}
	if o.ClientCert == nil {
		certPEM, keyPEM, err := attest.NewSelfSigned("intact-verifier")
		if err != nil {
			return nil, err
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		o.ClientCert = &c
	}
	v := &Verifier{o: o, log: o.Logger, writes: make(chan write, 4096),
		runners: map[string]*runner{}, policies: map[string]*rtpolicy.Compiled{},
		bootPolicies: map[string]*bootpolicy.Compiled{}, m: newMetrics()}
	if len(o.Webhooks) > 0 {
		// Registers the receivers: each gets the events from now on.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		wo := webhook.Options{Store: o.Store, Receivers: o.Webhooks, Logger: o.Logger,
			Base: o.WebhookBase, Max: o.WebhookMax}
		if o.Leases != nil {
			// replicas: one at a time delivers to each receiver
			wo.Leases, wo.Replica = o.Leases, o.Replica
		}
		h, err := webhook.New(ctx, wo)
		if err != nil {
			return nil, fmt.Errorf("verifier: %w", err)
		}
		v.hooks = h
	}
	return v, nil
}

// Run attests every stored agent (resuming from its stored progress)
// and those enrolled later, until ctx ends; then it writes the pending
// results and returns.
func (v *Verifier) Run(ctx context.Context) error {
	// Enrollments from now on start their runner themselves; those before
	// are in the store.
	v.mu.Lock()
	v.ctx = ctx
	v.mu.Unlock()
	leased := make(chan struct{})
	if v.o.Leases != nil {
		go func() { v.leaseLoop(ctx); close(leased) }()
	} else {
		close(leased)
		agents, err := v.o.Store.ListAgents(ctx)
		if err != nil {
			return err
		}
		// Spread the first attestations of the stored agents over one
		// interval, so that a restart does not quote every agent at once.
		for i, a := range agents {
			v.start(a, v.o.Interval*time.Duration(i)/time.Duration(len(agents)))
		}
	}
	flushed := make(chan struct{})
	go func() { v.writer(); close(flushed) }()
	delivered := make(chan struct{})
	go func() {
		// Undelivered events (from before a restart too) are sent first.
		if v.hooks != nil {
			v.hooks.Run(ctx)
		}
		close(delivered)
	}()
	<-ctx.Done()
	v.wg.Wait()
	close(v.writes)
	<-flushed
	<-delivered
	<-leased
	if v.o.Leases != nil {
		v.releaseLeases()
	}
	return nil
}

// Writer limits: a batch has at most maxBatch updates; a failed batch
// is tried again after FlushEvery doubled per failure, at most
// maxWriteBackoff; at shutdown a failing store is tried for at most
// shutdownWrite.
const (
	maxBatch        = 512
	maxWriteBackoff = 5 * time.Second
	shutdownWrite   = 30 * time.Second
)

// write is a runner's result on its way to the writer. fresh: the first
// result of a runner since it read the agent's status from the store (it
// started, or the lease fence dropped its writes and it read the agent
// again).
type write struct {
	store.Update
	fresh bool
}

// writer stores results in batches. A batch the store fails to save is
// kept and saved again, never dropped: each update carries the agent's
// status with its events (state changes), and an event lost here would
// never be made again (the runner has moved on). Updates that arrive
// meanwhile join the batch up to maxBatch; then the writer takes no
// more, and the runners wait to hand over their results.
func (v *Verifier) writer() {
	var batch []store.Update
	events := false // the batch has events: wake the webhooks after
	// Agents whose updates the lease fence dropped (this replica's leases
	// had lapsed): their runners' later results build on statuses that
	// were never stored, so they are dropped here too until the runner
	// has read the agent again (a fresh result). Its next attestation is
	// then judged against what is stored, and the state changes and
	// events of the dropped writes are made again, not lost.
	fenced := map[string]bool{}
	failures := 0 // consecutive failed saves of this batch
	var retryAt time.Time
	tick := time.NewTicker(v.o.FlushEvery)
	defer tick.Stop()
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		t0 := time.Now()
		dropped, err := v.save(ctx, batch)
		v.m.write.observe(time.Since(t0))
		if err != nil {
			v.m.writeErrs.Add(1)
			wait := webhook.Backoff(failures, v.o.FlushEvery, maxWriteBackoff)
			failures++
			retryAt = time.Now().Add(wait)
			v.log.Error("storing attestation results failed; kept to try again", "n", len(batch), "attempt", failures, "retry_in", wait, "err", err)
			return false
		}
		if failures > 0 {
			v.log.Info("attestation results stored after failures", "n", len(batch), "attempts", failures+1)
		}
		if len(dropped) > 0 {
			for _, id := range dropped {
				fenced[id] = true
			}
			v.m.fenced.Add(uint64(len(dropped)))
			v.reread(dropped)
			v.log.Warn("results dropped by the lease fence (the agents' leases lapsed or moved to another replica): those still held are read again before their next attestation", "replica", v.o.Replica, "agents", len(dropped))
		}
		if events {
			v.wake()
		}
		clear(batch) // let the events' bodies go
		batch, events, failures = batch[:0], false, 0
		v.m.pending.Store(0)
		return true
	}
	add := func(w write) {
		if fenced[w.AgentID] {
			if !w.fresh {
				return // built on a dropped write
			}
			delete(fenced, w.AgentID)
		}
		u := w.Update
		batch = append(batch, u)
		v.m.pending.Store(int64(len(batch)))
		events = events || len(u.Events) > 0
	}
	for {
		in := v.writes
		if len(batch) >= maxBatch {
			in = nil // a failed full batch: runners wait
		}
		select {
		case u, ok := <-in:
			if !ok {
				v.finalFlush(flush)
				return
			}
			add(u)
			if len(batch) >= maxBatch && failures == 0 {
				flush()
			}
		case <-tick.C:
			if failures == 0 || !time.Now().Before(retryAt) {
				flush()
			}
		}
	}
}

// finalFlush saves the last batch at shutdown, trying a failing store
// again for at most shutdownWrite.
func (v *Verifier) finalFlush(flush func() bool) {
	deadline := time.Now().Add(shutdownWrite)
	for attempt := 0; !flush(); attempt++ {
		wait := webhook.Backoff(attempt, v.o.FlushEvery, maxWriteBackoff)
		if time.Now().Add(wait).After(deadline) {
			v.log.Error("attestation results not stored at shutdown: the store kept failing (the agents are attested again from their stored state at the next start)")
			return
		}
		time.Sleep(wait)
	}
}

// start begins attesting a after delay (unless its attestation has
// stopped on a security failure).
func (v *Verifier) start(a *store.Agent, delay time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ctx == nil || v.ctx.Err() != nil || v.runners[a.ID] != nil {
		return
	}
	if a.State == store.StateFailed && a.Kind == store.KindSecurity {
		return
	}
	ak, err := quote.ParseAK(a.AKPublic)
	if err != nil {
		v.log.Error("stored ak unusable", "agent", a.ID, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(v.ctx)
	r := &runner{v: v, agent: a, status: a.Status, fresh: true, ak: ak, cancel: cancel,
		client: newAgentClient(a.Addr, a.CertDER, nil, v.o.ClientCert, v.o.Timeout), gap: a.Status.Gap != nil}
	v.runners[a.ID] = r
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		r.run(ctx, delay)
	}()
}

// reread has the runners of ids read their agent from the store again
// before their next attestation: the lease fence dropped their writes.
func (v *Verifier) reread(ids []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range ids {
		if r := v.runners[id]; r != nil {
			r.stale.Store(true)
		}
	}
}

func (v *Verifier) stop(id string) {
	v.mu.Lock()
	r := v.runners[id]
	delete(v.runners, id)
	v.mu.Unlock()
	if r != nil {
		r.cancel()
	}
}

// Remove deletes an agent and its history, with a removal event in the
// same transaction (its events stay until delivered and pruned), and
// stops attesting it. If the store fails, nothing is removed and the
// agent is still attested.
func (v *Verifier) Remove(ctx context.Context, id string) error {
	a, err := v.o.Store.GetAgent(ctx, id)
	if err != nil {
		return err
	}
	e := v.newEvent(EventRemoved, a, a.Status, a.State, v.o.Now().UTC())
	if err := v.o.Store.DeleteAgent(ctx, id, e); err != nil {
		return err
	}
	// A result the runner sends meanwhile is dropped by the store: the
	// agent is gone.
	v.stop(id)
	v.wake()
	return nil
}

// ErrNotFailed is returned by Reactivate for an agent that is not failed
// for a security reason (an operational failure clears itself at the next
// attestation that passes).
var ErrNotFailed = errors.New("the agent is not failed for a security reason")

// MaxNote bounds an operator's note (Reactivate).
const MaxNote = 1024

// ErrNoteTooLong is returned by Reactivate for a note over MaxNote bytes.
var ErrNoteTooLong = fmt.Errorf("note longer than %d bytes", MaxNote)

// Reactivate clears an agent's security failure on an operator's
// decision: the agent goes back to "enrolled", a "reactivated" event
// with the note goes to its timeline and the outbox, in the same
// transaction, and attestation starts again from where the failure left
// it. Records already judged (those that failed included) are not judged
// again: reactivating accepts them, which is the operator's decision to
// make, and is recorded.
func (v *Verifier) Reactivate(ctx context.Context, id, note string) (*store.Agent, error) {
	if len(note) > MaxNote {
		return nil, ErrNoteTooLong
	}
	a, err := v.o.Store.GetAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.State != store.StateFailed || a.Kind != store.KindSecurity {
		return nil, fmt.Errorf("%w (state %s)", ErrNotFailed, a.State)
	}
	v.stop(id) // the runner that stopped at the failure
	now := v.o.Now().UTC()
	prev := a.Status
	st := a.Status
	reason := "reactivated by the operator"
	if note != "" {
		reason += ": " + note
	}
	st.State, st.Kind, st.Reasons = store.StateEnrolled, "", []string{reason}
	ev := v.newEvent(EventReactivated, a, st, prev.State, now)
	res := store.Result{AgentID: a.ID, Time: now, State: st.State, Reasons: st.Reasons,
		LogOffset: st.Progress.LogOffset, Attestations: st.Attestations}
	if err := v.o.Store.SaveAttestations(ctx, []store.Update{{AgentID: a.ID, Created: a.Created,
		Status: st, Result: res, Events: []store.Event{ev}, Heartbeat: v.o.HistoryHeartbeat}}); err != nil {
		return nil, err
	}
	v.wake()
	v.log.Info("agent reactivated by the operator", "agent", a.ID, "note", note, "previous_reasons", prev.Reasons)
	a.Status = st
	if v.claim(ctx, a.ID) { // with replicas: the holder of its lease starts it (leaseRound)
		v.start(a, 0)
	}
	return a, nil
}

// ErrNoGap: Acknowledge of an agent without an unacknowledged gap.
var ErrNoGap = errors.New("no reboot after a gap to acknowledge")

// ErrNotAttested: Acknowledge of an agent whose attestation stopped at a
// security failure (reactivate it first), or that no replica attests
// right now.
var ErrNotAttested = errors.New("the agent is not attested now")

// ErrNotHolder is matched (errors.Is) by a *NotHolderError.
var ErrNotHolder = errors.New("another replica attests the agent")

// NotHolderError: with replicas sharing the store, a write that only the
// replica attesting the agent can make (Acknowledge: its runner clears
// the gap at its next attestation) was asked of another one. It names
// the replica that holds the agent's lease, as the store last saw it.
type NotHolderError struct {
	Agent   string
	Replica string    // the lease's holder; "" none
	Until   time.Time // when its lease lapses (past: lapsed)
	Now     time.Time // this replica's clock when it looked
}

func (e *NotHolderError) Error() string {
	if e.Replica == "" || !e.Until.After(e.Now) {
		return fmt.Sprintf("agent %q: no replica attests it now (its lease lapsed); try again in an interval, on the replica agents list names", e.Agent)
	}
	return fmt.Sprintf("agent %q is attested by replica %q (lease until %s): send this to that replica", e.Agent, e.Replica, e.Until.UTC().Format(time.RFC3339))
}

func (e *NotHolderError) Is(target error) bool { return target == ErrNotHolder }

// Acknowledge records that an operator accepts an agent's reboot after a
// gap in attestation (store.StateGap): from its next attestation the
// agent is judged by its evidence alone again, with an acknowledged
// event on its timeline. ErrNoGap if it has none, ErrNotAttested if its
// attestation stopped, store.ErrNotFound for an unknown agent. With
// replicas it is the replica holding the agent's lease that takes it
// (the acknowledgement goes to its runner); any other answers a
// *NotHolderError naming that replica.
func (v *Verifier) Acknowledge(ctx context.Context, id string) error {
	v.mu.Lock()
	r := v.runners[id]
	v.mu.Unlock()
	if r != nil && !r.ended.Load() {
		if !r.requestAck() {
			return fmt.Errorf("agent %q: %w", id, ErrNoGap)
		}
		return nil
	}
	a, err := v.o.Store.GetAgent(ctx, id)
	if err != nil {
		return err
	}
	if a.State == store.StateFailed && a.Kind == store.KindSecurity {
		return fmt.Errorf("agent %q: %w: a security failure stopped its attestation (agents reactivate)", id, ErrNotAttested)
	}
	if v.o.Leases != nil && a.Lease.Replica != v.o.Replica {
		return &NotHolderError{Agent: id, Replica: a.Lease.Replica, Until: a.Lease.Until, Now: v.o.Now()}
	}
	return fmt.Errorf("agent %q: %w (not started yet: try again in an interval)", id, ErrNotAttested)
}

// PutPolicy validates and stores a runtime policy; agents use the new
// version from their next attestation.
func (v *Verifier) PutPolicy(ctx context.Context, name string, doc []byte) (*rtpolicy.Compiled, error) {
	if strings.HasPrefix(name, bootPolicyPrefix) {
		return nil, fmt.Errorf("%w: policy names starting with %q are kept for boot policies", rtpolicy.ErrFormat, bootPolicyPrefix)
	}
	c, err := v.parsePolicy(doc)
	if err != nil {
		return nil, err
	}
	if err := v.o.Store.PutPolicy(ctx, &store.Policy{Name: name, Doc: doc, Updated: v.o.Now()}); err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.policies[name] = c
	v.mu.Unlock()
	return c, nil
}

func (v *Verifier) policy(ctx context.Context, name string) (*rtpolicy.Compiled, error) {
	v.mu.Lock()
	c := v.policies[name]
	v.mu.Unlock()
	if c != nil {
		return c, nil
	}
	p, err := v.o.Store.GetPolicy(ctx, name)
	if err != nil {
		return nil, err
	}
	if c, err = v.parsePolicy(p.Doc); err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.policies[name] = c
	v.mu.Unlock()
	return c, nil
}

// parsePolicy checks a runtime policy before use: with PolicySigners it
// must be a signed envelope that verifies (rtpolicy.ErrUnsigned,
// ErrBadPolicySig, ErrUnknownSigner otherwise); without, a signed
// envelope is refused rather than used unverified.
func (v *Verifier) parsePolicy(doc []byte) (*rtpolicy.Compiled, error) {
	if v.o.PolicySigners != nil {
		c, _, _, err := rtpolicy.OpenSigned(doc, v.o.PolicySigners)
		return c, err
	}
	if _, s, err := rtpolicy.SplitEnvelope(doc); err == nil && s != nil {
		return nil, fmt.Errorf("%w: the policy is signed, and this verifier has no policy signer certificate to check it (serve --policy-cert)", rtpolicy.ErrFormat)
	}
	return rtpolicy.Parse(doc)
}

// EnrollRequest asks to enroll an agent.
type EnrollRequest struct {
	ID     string
	Addr   string // host:port of the agent API
	Policy string // runtime policy name (must exist)
	// CertDER pins the agent's TLS certificate. If nil, the certificate
	// the agent presents at enrollment is pinned (trust on first use;
	// the activation proof binds it to the TPM).
	CertDER []byte
}

// Enroll enrolls an agent: it fetches the EK and AK, checks that the AK
// is a restricted signing key, makes a credential for the EK bound to the
// AK's name, and requires the agent to prove it recovered it
// (TPM2_ActivateCredential succeeds only in the TPM holding both keys),
// with the proof bound to the pinned TLS certificate. Then it stores the
// agent and starts attesting it.
func (v *Verifier) Enroll(ctx context.Context, req EnrollRequest) (*store.Agent, error) {
	if err := CheckID(req.ID); err != nil {
		return nil, err
	}
	pol, err := v.policy(ctx, req.Policy)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", req.Policy, err)
	}
	if bp := pol.BootPolicy(); bp != "" {
		if _, err := v.bootPolicy(ctx, bp); err != nil {
			return nil, fmt.Errorf("policy %q names %w", req.Policy, err)
		}
	}
	if req.CertDER != nil {
		if err := parseCert(req.CertDER); err != nil {
			return nil, fmt.Errorf("agent certificate: %w", err)
		}
	}
	var seen []byte
	c := newAgentClient(req.Addr, req.CertDER, &seen, v.o.ClientCert, v.o.Timeout)
	defer c.close()
	e, err := c.enrollment(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading enrollment data: %w", err)
	}
	pin := req.CertDER
	if pin == nil {
		pin = seen
	}
	ak, err := quote.ParseAK(e.AKPublic)
	if err != nil {
		return nil, secErr(ReasonEnrollment, "%v", err)
	}
	if !bytes.Equal(ak.Name(), e.AKName) {
		return nil, secErr(ReasonEnrollment, "ak name %x does not match its public area (%x)", e.AKName, ak.Name())
	}
	ekr, err := v.checkEK(e)
	if err != nil {
		return nil, err
	}
	if err := checkLogPCR(pol, e.Log, e.LogPCR); err != nil {
		return nil, err
	}
	key, err := ekKey(e.EKPublic)
	if err != nil {
		return nil, err
	}
	if err := v.checkDuplicateTPM(ctx, req.ID, key, e); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(v.o.Rand, secret); err != nil {
		return nil, err
	}
	blob, encSecret, err := makeCredential(v.o.Rand, e.EKPublic, ak.Name(), secret)
	if err != nil {
		return nil, secErr(ReasonEnrollment, "ek: %v", err)
	}
	resp, err := c.activate(ctx, &attest.ActivateRequest{Credential: blob, Secret: encSecret})
	var ae *AgentError
	if errors.As(err, &ae) && ae.Status == 422 {
		return nil, secErr(ReasonEnrollment, "the agent could not activate the credential: the ak is not in the tpm holding the ek (%s)", ae.Msg)
	}
	if err != nil {
		return nil, fmt.Errorf("activating credential: %w", err)
	}
	if subtle.ConstantTimeCompare(resp.Proof, attest.ActivationProof(secret, pin)) != 1 {
		return nil, secErr(ReasonEnrollment, "activation proof does not match the credential and the agent's certificate")
	}
	a := &store.Agent{ID: req.ID, Addr: req.Addr, CertDER: pin, EKPublic: e.EKPublic, EKCert: e.EKCert, EKKey: key,
		AKPublic: e.AKPublic, Policy: req.Policy, LogSource: e.Log, LogPCR: e.LogPCR, Created: v.o.Now().UTC(),
		Status: store.Status{State: store.StateEnrolled}}
	// Again under the lock, with the creation: two enrollments of one
	// TPM at once must not both pass. The agent and its enrollment event
	// in one transaction.
	v.enrollMu.Lock()
	err = v.checkDuplicateTPM(ctx, req.ID, key, e)
	if err == nil {
		err = v.o.Store.CreateAgent(ctx, a, v.newEvent(EventEnrolled, a, a.Status, "", a.Created))
	}
	v.enrollMu.Unlock()
	if err != nil {
		return nil, err
	}
	v.log.Info("enrolled", "agent", a.ID, "ek", ekr.Verdict())
	v.wake()
	if v.claim(ctx, a.ID) {
		v.start(a, 0)
	}
	return a, nil
}

// MaxIDLen is the longest agent id.
const MaxIDLen = 128

// CheckID checks an agent id against the grammar
//
//	id = ALNUM *127( ALNUM / "-" / "_" / "." )
//
// (ALNUM: ASCII letters and digits): 1-128 bytes, starting with a letter
// or a digit. So an id is never "." or "..", never a hidden file or
// an option ("-x"), never holds a path separator, space, control
// character or anything a terminal or a URL path would interpret, and
// can be used as it is in a file name, a URL path segment and a log
// line.
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("agent id %q: want 1-%d characters", id, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("agent id %q: must start with a letter or a digit", id)
		}
		if !alnum && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("agent id %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// makeCredential is TPM2_MakeCredential in software.
func makeCredential(rnd io.Reader, ekPublic, name, secret []byte) (blob, encSecret []byte, err error) {
	pub, err := unmarshalPublic(ekPublic)
	if err != nil {
		return nil, nil, err
	}
	if !pub.ObjectAttributes.Restricted || !pub.ObjectAttributes.Decrypt || !pub.ObjectAttributes.FixedTPM {
		return nil, nil, errors.New("not a restricted decryption key fixed to its tpm")
	}
	key, err := tpm2.ImportEncapsulationKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return tpm2.CreateCredential(rnd, key, name, secret)
}

func unmarshalPublic(b []byte) (pub *tpm2.TPMTPublic, err error) {
	if len(b) == 0 || len(b) > 4096 {
		return nil, fmt.Errorf("public area of %d bytes", len(b))
	}
	defer func() {
		if r := recover(); r != nil {
			pub, err = nil, fmt.Errorf("unparsable public area: %v", r)
		}
	}()
	pub, err = tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*pub), b) {
		return nil, errors.New("public area not in canonical form")
	}
	return pub, nil
}

// ekPublicKey returns the EK's public key.
func ekPublicKey(b []byte) (crypto.PublicKey, error) {
	pub, err := unmarshalPublic(b)
	if err != nil {
		return nil, err
	}
	return tpm2.Pub(*pub)
}
