// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
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
