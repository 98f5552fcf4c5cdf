// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"slices"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store"
)

// Each failure reason maps to the AR4SI component it concerns.
func TestEARAppraisal(t *testing.T) {
	sec := func(reasons ...string) store.Status {
		return store.Status{State: store.StateFailed, Kind: store.KindSecurity, Reasons: reasons}
	}
	for _, tc := range []struct {
		name   string
		st     store.Status
		status ear.Status
		vector *ear.TrustVector
		reason string
		paths  []string
	}{
		{"enrolled", store.Status{State: store.StateEnrolled}, ear.StatusNone, nil, "", nil},
		{"trusted", store.Status{State: store.StateTrusted, Attestations: 3, LastAttested: time.Unix(1700000000, 0)}, ear.StatusAffirming,
			&ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 2}, "", nil},
		{"operational", store.Status{State: store.StateFailed, Kind: store.KindOperational, Reasons: []string{"quote: agent answered 503: tpm busy"}},
			ear.StatusWarning, nil, "", nil},
		{"unreachable", store.Status{State: store.StateUnreachable, Reasons: []string{"quote: connection refused"}},
			ear.StatusWarning, nil, "", nil},
		{"another ak", sec("quote-signature: bad"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 99}, verifier.ReasonQuoteSignature, nil},
		{"pcr digest", sec("quote-pcr-digest: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 99}, verifier.ReasonPCRDigest, nil},
		{"replay", sec("quote-nonce: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 96}, verifier.ReasonQuoteNonce, nil},
		{"clock", sec("quote-clock: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 96}, verifier.ReasonClock, nil},
		{"list replay", sec("log-replay: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 99}, verifier.ReasonLogReplay, nil},
		{"altered record", sec("log-template-hash: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 99}, verifier.ReasonLogTemplateHash, nil},
		{"boot aggregate", sec("boot-aggregate: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Configuration: 99}, verifier.ReasonBootAggregate, nil},
		{"boot log", sec("boot-log: x"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Configuration: 99}, verifier.ReasonBootLog, nil},
		{"policy", sec("policy: /usr/bin/evil: not-in-policy (record 3, sha256:00)", "policy: /a: b: digest-mismatch (record 4, sha256:11)", "policy: and 3 more"),
			ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 33}, verifier.ReasonPolicy, []string{"/usr/bin/evil", "/a: b"}},
		{"violation", sec("policy: /etc/x: violation (record 5, sha256:00)"),
			ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 33, FileSystem: 32}, verifier.ReasonPolicy, []string{"/etc/x"}},
		{"trusted, boot judged", store.Status{State: store.StateTrusted, Attestations: 3, LastAttested: time.Unix(1700000000, 0),
			Progress: store.Progress{BootLog: store.BootLogJudged}}, ear.StatusAffirming,
			&ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 2, Configuration: 2}, "", nil},
		{"boot component", sec(`boot-policy: pcr 4 event 22 (EV_EFI_BOOT_SERVICES_APPLICATION shim "\\EFI\\x"): digest-not-accepted: sha256:00 is not one of the 1 accepted`),
			ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Executables: 33, Configuration: 96}, verifier.ReasonBootPolicy, nil},
		{"secure boot off", sec(`boot-policy: pcr 7 event 2 (EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot "SecureBoot"): secure-boot: secure boot is disabled; the policy requires it enabled`),
			ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 2, Configuration: 96}, verifier.ReasonBootPolicy, nil},
		{"unknown", sec("something new"), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 1}, "something new", nil},
		{"no reason", sec(), ear.StatusContraindicated, &ear.TrustVector{Hardware: 2, InstanceIdentity: 1}, "", nil},
	} {
		ap := verifier.EARAppraisal("web", tc.st)
		if ap.Status != tc.status || ap.Reason != tc.reason || !slices.Equal(ap.Paths, tc.paths) ||
			(ap.Vector == nil) != (tc.vector == nil) || (ap.Vector != nil && *ap.Vector != *tc.vector) {
			t.Errorf("%s: %+v (vector %+v), want %s %+v reason %q paths %q", tc.name, ap, ap.Vector, tc.status, tc.vector, tc.reason, tc.paths)
		}
		if ap.PolicyID != "intact:runtime-policy/web" || ap.State != tc.st.State || !slices.Equal(ap.Reasons, tc.st.Reasons) {
			t.Errorf("%s: %+v", tc.name, ap)
		}
		if tc.st.State == store.StateTrusted && (ap.Attestations != 3 || ap.LastAttested != 1700000000) {
			t.Errorf("%s: counters %+v", tc.name, ap)
		}
	}
}
