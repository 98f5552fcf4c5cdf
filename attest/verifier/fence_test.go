// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
)

// fencingStore is a store one replica holds every lease of, whose fence
// can be made to drop writes, as store/postgres drops the writes of a
// replica whose leases lapsed (a lease round that ran late on a loaded
// machine or database) until its next renewal.
type fencingStore struct {
	store.Store
	mu       sync.Mutex
	drop     func(u *store.Update) bool // drop this update (nil: none)
	dropped  int
	released bool // ReleaseLeases was called: every write is dropped
}

func (f *fencingStore) Lease(ctx context.Context, replica string, ttl time.Duration) ([]string, error) {
	f.mu.Lock()
	f.released = false
	f.mu.Unlock()
	as, err := f.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids, nil
}

func (f *fencingStore) ClaimAgent(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (f *fencingStore) ReleaseLeases(context.Context, string) error {
	f.mu.Lock()
	f.released = true
	f.mu.Unlock()
	return nil
}
func (f *fencingStore) Replicas(context.Context, time.Duration) (map[string]int, error) {
	return map[string]int{"r1": 1}, nil
}
func (f *fencingStore) LeaseReceiver(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}
func (f *fencingStore) MarkDeliveredAs(ctx context.Context, _, receiver string, seq int64) error {
	return f.MarkDelivered(ctx, receiver, seq)
}

func (f *fencingStore) SaveAttestationsAs(ctx context.Context, _ string, batch []store.Update) ([]string, error) {
	f.mu.Lock()
	var keep []store.Update
	var dropped []string
	for _, u := range batch {
		if f.released || f.drop != nil && f.drop(&u) {
			f.dropped++
			if len(dropped) == 0 || dropped[len(dropped)-1] != u.AgentID {
				dropped = append(dropped, u.AgentID)
			}
			continue
		}
		keep = append(keep, u)
	}
	f.mu.Unlock()
	return dropped, f.SaveAttestations(ctx, keep)
}

// startFenced starts a verifier (replica "r1", options changed by opt)
// on a fencingStore and enrolls agent "u" with one measured file in its
// policy.
func startFenced(t *testing.T, opt func(*verifier.Options)) (*testAgent, *testVerifier, *fencingStore) {
	t.Helper()
	a := newTestAgent(t, nil)
	ok1 := t.TempDir() + "/ok1"
	a.measure(ok1)
	var fs *fencingStore
	tv := startVerifierWith(t, "", func(o *verifier.Options) {
		fs = &fencingStore{Store: o.Store}
		o.Store, o.Leases, o.Replica = fs, fs, "r1"
		if opt != nil {
			opt(o)
		}
	})
	tv.enroll(a, "u", policyFor(ok1))
	return a, tv, fs
}

// A replica whose leases lapsed has its writes dropped by the store's
// fence; the state changes and events in them must not be lost: the
// runner reads the agent again and judges its next attestation against
// what is stored, and results built on a dropped write are not stored
// either. Here the first two writes that say the agent is unreachable
// (the first with the 'unreachable' event) are dropped: the agent must
// still end unreachable with that event on its timeline. On the old
// code the third write stored the state without the event (a later
// attestation saw no change), and the timeline read trusted, trusted.
func TestFencedWritesAreMadeAgain(t *testing.T) {
	a, tv, fs := startFenced(t, nil)
	tv.wait("u", 10*time.Second, "trusted", state(store.StateTrusted))

	fs.mu.Lock()
	left := 2
	fs.drop = func(u *store.Update) bool {
		if u.AgentID == "u" && u.Status.State == store.StateUnreachable && left > 0 {
			left--
			return true
		}
		return false
	}
	fs.mu.Unlock()
	a.down()
	got := tv.wait("u", 10*time.Second, "unreachable", state(store.StateUnreachable))
	fs.mu.Lock()
	dropped := fs.dropped
	fs.mu.Unlock()
	if dropped != 2 {
		t.Fatalf("the fence dropped %d writes, want 2 before the unreachable state was stored", dropped)
	}
	if types := timelineTypes(t, tv, got); !inOrder(types, []string{verifier.EventTrusted, verifier.EventUnreachable}) {
		t.Fatalf("timeline %v: want trusted, unreachable (the event of a dropped write made again)", types)
	}
	var m strings.Builder
	if err := tv.v.WriteMetrics(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.String(), "intact_verifier_fenced_writes_total ") || strings.Contains(m.String(), "intact_verifier_fenced_writes_total 0\n") {
		t.Errorf("metrics: want intact_verifier_fenced_writes_total > 0")
	}
	a.up()
	got = tv.wait("u", 10*time.Second, "trusted again", state(store.StateTrusted))
	if types := timelineTypes(t, tv, got); !inOrder(types, []string{verifier.EventTrusted, verifier.EventUnreachable, verifier.EventTrusted}) {
		t.Fatalf("timeline %v: want trusted, unreachable, trusted", types)
	}
}

// A replica that stops cleanly hands its agents over (releases its
// leases) only after its last results are stored: released first, the
// fence dropped the writer's last batch. Here the writer holds every
// result until the stop (FlushEvery of an hour), so the whole
// attestation is in that last batch. On the old order the agent was
// still 'enrolled' in the store after the stop.
func TestStopStoresBeforeReleasingLeases(t *testing.T) {
	_, tv, fs := startFenced(t, func(o *verifier.Options) { o.FlushEvery = time.Hour })
	queued := regexp.MustCompile(`(?m)^intact_verifier_write_queue (\d+)$`)
	var m strings.Builder
	if !testenv.Until(20*time.Second, func() bool {
		m.Reset()
		if err := tv.v.WriteMetrics(context.Background(), &m); err != nil {
			return false
		}
		q := queued.FindStringSubmatch(m.String())
		n, _ := strconv.Atoi(q[1])
		return n > 0
	}) {
		t.Fatalf("no result waiting to be stored:\n%s", m.String())
	}
	if got, err := tv.st.GetAgent(context.Background(), "u"); err != nil || got.Attestations != 0 {
		t.Fatalf("stored before the stop (FlushEvery is an hour): %+v, %v", got, err)
	}
	tv.cancel()
	<-tv.done
	defer tv.st.Close()
	got, err := tv.st.GetAgent(context.Background(), "u")
	if err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	released, dropped := fs.released, fs.dropped
	fs.mu.Unlock()
	if !released || dropped != 0 || got.Attestations == 0 || got.State != store.StateTrusted {
		t.Fatalf("after a clean stop: leases released %v, %d results dropped, stored %s after %d attestations; want released, none dropped, trusted", released, dropped, got.State, got.Attestations)
	}
}
