// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/intactsec/intact/store"
)

// leaseStore fails GetAgent for the first fails calls and counts them.
type leaseStore struct {
	store.Store
	fails, calls int
}

func (s *leaseStore) GetAgent(ctx context.Context, id string) (*store.Agent, error) {
	s.calls++
	if s.calls <= s.fails {
		return nil, context.DeadlineExceeded
	}
	a := &store.Agent{ID: id}
	a.State, a.Kind = store.StateFailed, store.KindSecurity // no runner needed
	return a, nil
}

type oneLease struct{ store.Leaser }

func (oneLease) Lease(ctx context.Context, replica string, ttl time.Duration) ([]string, error) {
	return []string{"a1"}, nil
}

// A leased agent the lease round could not read (a slow database: the
// round's deadline) is read again at the next round; before, it was
// marked known and never attested while this replica renewed its lease
// (seen in bench/fleet -store postgres under load: "leased agent
// unreadable … context deadline exceeded", the rate 76 % of the expected).
func TestLeaseRoundRetriesUnreadableAgent(t *testing.T) {
	st := &leaseStore{fails: 1}
	v, err := New(Options{Store: st, Leases: oneLease{}, Replica: "r"})
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]time.Time{}
	v.leaseRound(context.Background(), time.Second, known)
	v.leaseRound(context.Background(), time.Second, known)
	if st.calls != 2 {
		t.Fatalf("GetAgent called %d times in two rounds after a failure, want 2 (read again)", st.calls)
	}
	v.leaseRound(context.Background(), time.Second, known)
	if st.calls != 2 {
		t.Fatalf("GetAgent called %d times: a read agent is read again every round", st.calls)
	}
}

// An agent a security failure stopped is read again every few rounds: an
// operator may reactivate it on any replica, and the one that holds its
// lease must start attesting it.
func TestLeaseRoundRechecksStoppedAgents(t *testing.T) {
	st := &leaseStore{}
	now := time.Unix(1000, 0)
	v, err := New(Options{Store: st, Leases: oneLease{}, Replica: "r", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]time.Time{}
	v.leaseRound(context.Background(), time.Second, known)
	v.leaseRound(context.Background(), time.Second, known)
	if st.calls != 1 {
		t.Fatalf("GetAgent called %d times in two quick rounds, want 1", st.calls)
	}
	now = now.Add(recheckRounds * time.Second / 3)
	v.leaseRound(context.Background(), time.Second, known)
	if st.calls != 2 {
		t.Fatalf("GetAgent called %d times after %d rounds, want 2 (a stopped agent is read again)", st.calls, recheckRounds)
	}
}

// bulkStore counts reads: ListAgents answers every agent, failed for a
// security reason (so no runner starts).
type bulkStore struct {
	store.Store
	n, lists, gets int
}

func (s *bulkStore) ListAgents(context.Context) ([]*store.Agent, error) {
	s.lists++
	var out []*store.Agent
	for i := range s.n {
		a := &store.Agent{ID: fmt.Sprintf("a%03d", i)}
		a.State, a.Kind = store.StateFailed, store.KindSecurity
		out = append(out, a)
	}
	return out, nil
}

func (s *bulkStore) GetAgent(ctx context.Context, id string) (*store.Agent, error) {
	s.gets++
	a := &store.Agent{ID: id}
	a.State, a.Kind = store.StateFailed, store.KindSecurity
	return a, nil
}

type manyLeases struct {
	store.Leaser
	ids []string
}

func (m manyLeases) Lease(context.Context, string, time.Duration) ([]string, error) {
	return m.ids, nil
}

// A round that takes many agents (a replica joined or died) reads them
// with one ListAgents, not one GetAgent each (thousands of reads outlasted
// the round's deadline in bench/fleet with two replicas); a round with a
// few reads each.
func TestLeaseRoundReadsManyAgentsAtOnce(t *testing.T) {
	st := &bulkStore{n: 200}
	var ids []string
	for i := range 200 {
		ids = append(ids, fmt.Sprintf("a%03d", i))
	}
	v, err := New(Options{Store: st, Leases: manyLeases{ids: ids}, Replica: "r"})
	if err != nil {
		t.Fatal(err)
	}
	v.leaseRound(context.Background(), time.Second, map[string]time.Time{})
	if st.lists != 1 || st.gets != 0 {
		t.Fatalf("200 new leases read with %d ListAgents and %d GetAgent, want 1 and 0", st.lists, st.gets)
	}
	st2 := &bulkStore{n: 200}
	v, err = New(Options{Store: st2, Leases: manyLeases{ids: ids[:3]}, Replica: "r"})
	if err != nil {
		t.Fatal(err)
	}
	v.leaseRound(context.Background(), time.Second, map[string]time.Time{})
	if st2.lists != 0 || st2.gets != 3 {
		t.Fatalf("3 new leases read with %d ListAgents and %d GetAgent, want 0 and 3", st2.lists, st2.gets)
	}
}
