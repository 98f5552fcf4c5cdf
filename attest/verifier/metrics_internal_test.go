// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"testing"
	"time"

	"github.com/intactsec/intact/store"
)

// The runners' metrics hooks allocate nothing, and failures are counted
// under a bounded set of reasons.
func TestMetricsHooks(t *testing.T) {
	m := newMetrics()
	st := store.Status{State: store.StateFailed, Kind: store.KindSecurity, Reasons: []string{"policy: /bin/x: not in policy"}}
	ok := store.Status{State: store.StateTrusted}
	if n := testing.AllocsPerRun(100, func() {
		m.attested(&st)
		m.attested(&ok)
		m.late.observe(3 * time.Millisecond)
		m.write.observe(2 * time.Second)
	}); n != 0 {
		t.Errorf("hooks allocate %v times per attestation", n)
	}
	for _, c := range []struct {
		st   store.Status
		want string
	}{
		{st, ReasonPolicy},
		{store.Status{State: store.StateFailed, Kind: store.KindSecurity, Reasons: []string{"quote-nonce: stale"}}, ReasonQuoteNonce},
		{store.Status{State: store.StateFailed, Kind: store.KindOperational, Reasons: []string{"quote: agent answered 503"}}, store.KindOperational},
		{store.Status{State: store.StateUnreachable, Reasons: []string{"quote: connection refused"}}, store.StateUnreachable},
		{store.Status{State: store.StateUnreachable, Reasons: []string{"policy: x"}}, store.StateUnreachable},
		{store.Status{State: store.StateFailed, Kind: store.KindSecurity, Reasons: []string{"made-up\nreason"}}, "other"},
		{store.Status{State: store.StateFailed, Kind: store.KindSecurity}, "other"},
	} {
		if got := failureReasons[failureIndex(&c.st)]; got != c.want {
			t.Errorf("%+v: reason %q, want %q", c.st, got, c.want)
		}
	}
	if got := m.late.counts[0].Load(); got != 101 { // 3ms: bucket le=0.01
		t.Errorf("late bucket le=0.01: %d, want 101", got)
	}
}
