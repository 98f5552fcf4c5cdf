// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
)

// An agent that stops answering is unreachable, not failed: no failure
// kind, EAR warning, an unreachable event, counted as unreachable in the
// metrics, and attestation goes on. When it answers again with good
// evidence it is trusted without an operator: the replay from its stored
// offset covers what it measured meanwhile. A tampered agent still fails
// (security), and stays failed while its network is down, across a
// verifier restart and after the network is back, until an operator
// reactivates it. On the old code the agent that stopped answering was
// failed (operational).
func TestUnreachableThenTrusted(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, ok2, evil := filepath.Join(dir, "ok1"), filepath.Join(dir, "ok2"), filepath.Join(dir, "evil")
	a.measure(ok1)
	tv := startVerifier(t, "")
	ctx := context.Background()
	tv.enroll(a, "u", policyFor(ok1, ok2))
	tv.wait("u", 10*time.Second, "trusted", state(store.StateTrusted))

	// The agent stops: its port refuses connections.
	a.down()
	got := tv.wait("u", 10*time.Second, "unreachable", state(store.StateUnreachable))
	if got.Kind != "" || len(got.Reasons) != 1 {
		t.Fatalf("unreachable: %+v", got.Status)
	}
	n := got.Attestations
	got = tv.wait("u", 10*time.Second, "attempted twice more", func(x *store.Agent) bool { return x.Attestations >= n+2 })
	if got.State != store.StateUnreachable || !strings.Contains(reasons(got), "connection refused") {
		t.Fatalf("still down: %s %v", got.State, got.Reasons)
	}
	t.Logf("unreachable: %s", reasons(got))
	ap := tv.v.EAR(got, time.Now()).Submods["u"]
	if ap.Status != ear.StatusWarning || ap.State != store.StateUnreachable || ap.Vector != nil {
		t.Fatalf("EAR of an unreachable agent: %+v, want warning without claims", ap)
	}
	if types := timelineTypes(t, tv, got); !inOrder(types, []string{verifier.EventTrusted, verifier.EventUnreachable}) || strings.Contains(strings.Join(types, " "), verifier.EventFailed) {
		t.Fatalf("timeline %v: want trusted, unreachable, no failed", types)
	}
	var m bytes.Buffer
	waitMetric := func(line string) {
		t.Helper()
		if !testenv.Until(10*time.Second, func() bool {
			m.Reset()
			return tv.v.WriteMetrics(ctx, &m) != nil || strings.Contains(m.String(), line)
		}) {
			t.Fatalf("metrics without %q:\n%s", line, m.String())
		}
	}
	waitMetric(`intact_verifier_agents{state="unreachable"} 1`)
	for _, l := range []string{`intact_verifier_attestations_total{outcome="unreachable"} `, `intact_verifier_failures_total{reason="unreachable"} `} {
		if strings.Contains(m.String(), l+"0\n") || !strings.Contains(m.String(), l) {
			t.Errorf("metrics: want %s > 0:\n%s", l, m.String())
		}
	}

	// A file in the policy runs while it is down; it comes back: trusted
	// without an operator, the file verified.
	a.measure(ok2)
	a.up()
	got = tv.wait("u", 10*time.Second, "trusted again", state(store.StateTrusted))
	if got.Progress.LogOffset != 4 || got.Kind != "" || got.Gap != nil { // boot_aggregate, boot id, ok1, ok2
		t.Fatalf("back: %+v", got.Status)
	}
	if types := timelineTypes(t, tv, got); !inOrder(types, []string{verifier.EventTrusted, verifier.EventUnreachable, verifier.EventTrusted}) {
		t.Fatalf("timeline %v: want trusted, unreachable, trusted", types)
	}
	if h, err := tv.st.History(ctx, "u", 10); err != nil || len(h) < 3 || h[1].State != store.StateUnreachable {
		t.Fatalf("history %+v, %v: want the unreachable row", h, err)
	}

	// Tampered: a file outside the policy runs. Failed (security).
	a.measure(evil)
	failed := tv.wait("u", 10*time.Second, "failed", state(store.StateFailed))
	if failed.Kind != store.KindSecurity || !strings.Contains(reasons(failed), evil) {
		t.Fatalf("tampered: %+v", failed.Status)
	}
	stays := func(what string) {
		t.Helper()
		time.Sleep(5 * interval) // time under test: nothing may happen for five intervals
		got, err := tv.st.GetAgent(ctx, "u")
		if err != nil || got.State != store.StateFailed || got.Kind != store.KindSecurity || got.Attestations != failed.Attestations {
			t.Fatalf("%s: %+v, %v: want failed (security) after %d attestations", what, got, err, failed.Attestations)
		}
	}
	// Its network drops: it stays failed, also across a restart of the
	// verifier, and once the network is back.
	a.down()
	stays("network down")
	tv.stop()
	tv = startVerifier(t, tv.db)
	stays("network down, verifier restarted")
	a.up()
	stays("network back")
	if ap := tv.v.EAR(failed, time.Now()).Submods["u"]; ap.Status != ear.StatusContraindicated {
		t.Fatalf("EAR of the failed agent: %+v", ap)
	}
	// Only the operator clears it.
	if _, err := tv.v.Reactivate(ctx, "u", "checked"); err != nil {
		t.Fatal(err)
	}
	tv.wait("u", 10*time.Second, "trusted after reactivation", state(store.StateTrusted))
}
