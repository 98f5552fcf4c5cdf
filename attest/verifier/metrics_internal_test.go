// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"io"
	"strings"
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

// countStore answers CountAgents and fails ListAgents: the metrics must
// count agents with one aggregate query, never by reading every agent.
type countStore struct {
	store.Store
	t          *testing.T
	counts     int
	stateCount []store.StateCount
}

func (s *countStore) ListAgents(context.Context) ([]*store.Agent, error) {
	s.t.Error("the metrics listed every agent")
	return nil, nil
}

func (s *countStore) CountAgents(context.Context) ([]store.StateCount, error) {
	s.counts++
	return s.stateCount, nil
}

type replicasLeaser struct{ store.Leaser }

func (replicasLeaser) Replicas(context.Context, time.Duration) (map[string]int, error) {
	return map[string]int{"r1": 3, "r\"2": 1}, nil
}

// Agents by state come from CountAgents (one GROUP BY in the store), at
// most once an interval; on a shared store, by lease holder too, and the
// agents no replica holds.
func TestMetricsCountAgentsByQuery(t *testing.T) {
	st := &countStore{t: t, stateCount: []store.StateCount{
		{State: store.StateTrusted, Replica: "r1", Agents: 2},
		{State: store.StateFailed, Replica: "r1", Agents: 1},
		{State: store.StateTrusted, Replica: "r\"2", Agents: 1},
		{State: store.StateTrusted, Agents: 4},
	}}
	v, err := New(Options{Store: st, Leases: replicasLeaser{}, Replica: "r1", Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := v.WriteMetrics(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`intact_verifier_agents{state="trusted"} 7`,
		`intact_verifier_agents{state="failed"} 1`,
		`intact_verifier_agents{state="enrolled"} 0`,
		`intact_verifier_replica_agents{replica="r1",state="trusted"} 2`,
		`intact_verifier_replica_agents{replica="r1",state="failed"} 1`,
		`intact_verifier_replica_agents{replica="r\"2",state="trusted"} 1`,
		`intact_verifier_unleased_agents 4`,
		`intact_verifier_leases{replica="r1"} 3`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
	if err := v.WriteMetrics(context.Background(), io.Discard); err != nil {
		t.Fatal(err)
	}
	if st.counts != 1 {
		t.Errorf("two scrapes within the interval counted %d times, want once", st.counts)
	}
	// without leases: no per-replica series
	v, err = New(Options{Store: &countStore{t: t, stateCount: []store.StateCount{{State: store.StateTrusted, Agents: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := v.WriteMetrics(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `intact_verifier_agents{state="trusted"} 2`+"\n") || strings.Contains(b.String(), "replica=") {
		t.Errorf("one verifier's metrics:\n%s", b.String())
	}
}
