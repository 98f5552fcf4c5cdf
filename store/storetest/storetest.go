// SPDX-License-Identifier: Apache-2.0

// Package storetest is the conformance suite every store.Store backend
// must pass.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/store"
)

// Run runs the suite. open returns a new, empty store each call; reopen
// (optional) closes s and opens the same store again, to prove durability.
func Run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	t.Run("Agents", func(t *testing.T) { testAgents(t, open(t)) })
	t.Run("FindAgentsByKey", func(t *testing.T) { testFindAgentsByKey(t, open(t)) })
	t.Run("CountAgents", func(t *testing.T) { testCountAgents(t, open(t)) })
	t.Run("Attestations", func(t *testing.T) { testAttestations(t, open(t)) })
	t.Run("Policies", func(t *testing.T) { testPolicies(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open(t)) })
	t.Run("AgentEventsAtomic", func(t *testing.T) { testAgentEventsAtomic(t, open(t)) })
	t.Run("HistoryChanges", func(t *testing.T) { testHistoryChanges(t, open(t)) })
	t.Run("HeartbeatJitter", func(t *testing.T) { testHeartbeatJitter(t, open(t)) })
	t.Run("PruneBatches", func(t *testing.T) { testPruneBatches(t, open(t)) })
	t.Run("PruneEventsBatches", func(t *testing.T) { testPruneEventsBatches(t, open(t)) })
	if reopen != nil {
		t.Run("HistoryDurable", func(t *testing.T) { testHistoryDurable(t, open(t), reopen) })
		t.Run("Durable", func(t *testing.T) { testDurable(t, open(t), reopen) })
		t.Run("OutboxDurable", func(t *testing.T) { testOutboxDurable(t, open(t), reopen) })
	}
}

var ctx = context.Background()

func agent(id string) *store.Agent {
	return &store.Agent{
		ID: id, Addr: "127.0.0.1:9", CertDER: []byte{1, 2}, EKPublic: []byte{3}, EKCert: nil,
		AKPublic: []byte{4, 5}, Policy: "p", LogSource: "intact", LogPCR: 13, Created: time.Unix(1700000000, 0).UTC(),
		Status: store.Status{State: store.StateEnrolled},
	}
}

func same(t *testing.T, got, want *store.Agent) {
	t.Helper()
	if got.ID != want.ID || got.Addr != want.Addr || !bytes.Equal(got.CertDER, want.CertDER) ||
		!bytes.Equal(got.EKPublic, want.EKPublic) || !bytes.Equal(got.EKCert, want.EKCert) ||
		!bytes.Equal(got.AKPublic, want.AKPublic) || got.EKKey != want.EKKey || got.Policy != want.Policy || got.LogSource != want.LogSource || got.LogPCR != want.LogPCR ||
		!got.Created.Equal(want.Created) || got.State != want.State ||
		!reflect.DeepEqual(got.Reasons, want.Reasons) || !reflect.DeepEqual(got.Progress, want.Progress) ||
		got.Attestations != want.Attestations || !got.LastAttested.Equal(want.LastAttested) {
		t.Fatalf("agent = %+v\nwant    %+v", got, want)
	}
}

func testAgents(t *testing.T, s store.Store) {
	defer s.Close()
	a := agent("a1")
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAgent(ctx, agent("a1")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateAgent = %v, want ErrExists", err)
	}
	got, err := s.GetAgent(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, a)
	if _, err := s.GetAgent(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAgent(nope) = %v", err)
	}
	if err := s.CreateAgent(ctx, agent("a0")); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAgents(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a0" || list[1].ID != "a1" {
		t.Fatalf("ListAgents = %v, %v", list, err)
	}
	if err := s.DeleteAgent(ctx, "a0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, "a0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteAgent = %v", err)
	}
	if list, _ := s.ListAgents(ctx); len(list) != 1 {
		t.Fatalf("after delete: %d agents", len(list))
	}
}

// The agents of a TPM are found by its EK key, its EK public area or
// its AK public area; "" and nil match none, and a removed agent is
// not found.
func testFindAgentsByKey(t *testing.T, s store.Store) {
	defer s.Close()
	mk := func(id, ekKey string, ek, ak byte) *store.Agent {
		a := agent(id)
		a.EKKey, a.EKPublic, a.AKPublic = ekKey, []byte{ek, ek}, []byte{ak, ak, ak}
		if err := s.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	mk("a", "k1", 1, 1)
	mk("b", "k2", 2, 2)
	mk("old", "", 3, 3) // enrolled before EK keys were kept
	mk("c", "k4", 4, 4)
	got, err := s.GetAgent(ctx, "a")
	if err != nil || got.EKKey != "k1" {
		t.Fatalf("GetAgent = %+v, %v: EKKey not kept", got, err)
	}
	for _, tc := range []struct {
		name   string
		ekKey  string
		ek, ak []byte
		want   []string
	}{
		{"by ek key", "k2", []byte{9}, []byte{9}, []string{"b"}},
		{"by ek public", "k9", []byte{3, 3}, nil, []string{"old"}},
		{"by ak public", "", nil, []byte{4, 4, 4}, []string{"c"}},
		{"by all three, sorted", "k4", []byte{2, 2}, []byte{1, 1, 1}, []string{"a", "b", "c"}},
		{"empty key matches no legacy agent", "", []byte{9}, []byte{9}, nil},
		{"none", "k9", nil, nil, nil},
	} {
		ids, err := s.FindAgentsByKey(ctx, tc.ekKey, tc.ek, tc.ak)
		if err != nil || !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: FindAgentsByKey = %q, %v; want %q", tc.name, ids, err, tc.want)
		}
	}
	if err := s.DeleteAgent(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if ids, err := s.FindAgentsByKey(ctx, "k2", nil, nil); err != nil || len(ids) != 0 {
		t.Errorf("after removal: %q, %v", ids, err)
	}
}

func status(i int) store.Status {
	return store.Status{
		State: store.StateFailed, Reasons: []string{fmt.Sprintf("reason %d", i)},
		Progress: store.Progress{ResetCount: 2, RestartCount: 1, Clock: uint64(1000 + i), HaveClock: true,
			LogOffset: int64(10 * i), LogPCR: map[string][]byte{"sha256": bytes.Repeat([]byte{byte(i)}, 32)}, BootChecked: true},
		Attestations: int64(i), LastAttested: time.Unix(int64(1700000000+i), 0).UTC(),
	}
}

func testAttestations(t *testing.T, s store.Store) {
	defer s.Close()
	a := agent("a")
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	var batch []store.Update
	for i := 1; i <= 5; i++ {
		st := status(i)
		batch = append(batch, store.Update{AgentID: "a", Created: a.Created, Status: st, Result: store.Result{
			AgentID: "a", Time: st.LastAttested, State: st.State, Kind: "security", Reasons: st.Reasons, LogOffset: st.Progress.LogOffset}})
	}
	batch = append(batch, store.Update{AgentID: "gone", Created: a.Created, Status: status(9), Result: store.Result{AgentID: "gone", Time: time.Now(), State: "trusted"}})
	// An update from an earlier enrollment of the same id is dropped.
	batch = append(batch, store.Update{AgentID: "a", Created: a.Created.Add(-time.Hour), Status: status(8), Result: store.Result{AgentID: "a", Time: time.Now(), State: "trusted"}})
	if err := s.SaveAttestations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAgent(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	a.Status = status(5)
	same(t, got, a)
	h, err := s.History(ctx, "a", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 || h[0].LogOffset != 50 || h[2].LogOffset != 30 || h[0].Reasons[0] != "reason 5" || h[0].Kind != "security" {
		t.Fatalf("History = %+v", h)
	}
	if _, err := s.GetAgent(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update for an unknown agent created it: %v", err)
	}
	if n, err := s.PruneHistory(ctx, time.Unix(1700000004, 0), 100); err != nil || n != 3 {
		t.Fatalf("PruneHistory = %d, %v, want 3 deleted", n, err)
	}
	if h, _ := s.History(ctx, "a", 100); len(h) != 2 {
		t.Fatalf("after prune: %d results, want 2", len(h))
	}
	if err := s.DeleteAgent(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.History(ctx, "a", 100); len(h) != 0 {
		t.Fatalf("history of a deleted agent: %d results", len(h))
	}
}

func testPolicies(t *testing.T, s store.Store) {
	defer s.Close()
	if _, err := s.GetPolicy(ctx, "p"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPolicy = %v", err)
	}
	for _, doc := range []string{`{"v":1}`, `{"v":2}`} {
		if err := s.PutPolicy(ctx, &store.Policy{Name: "p", Doc: []byte(doc), Updated: time.Unix(5, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	s.PutPolicy(ctx, &store.Policy{Name: "a", Doc: []byte(`{}`)})
	p, err := s.GetPolicy(ctx, "p")
	if err != nil || string(p.Doc) != `{"v":2}` || !p.Updated.Equal(time.Unix(5, 0)) {
		t.Fatalf("GetPolicy = %+v, %v", p, err)
	}
	names, err := s.ListPolicies(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"a", "p"}) {
		t.Fatalf("ListPolicies = %v, %v", names, err)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	defer s.Close()
	const n = 8
	for i := 0; i < n; i++ {
		if err := s.CreateAgent(ctx, agent(fmt.Sprint("c", i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*20)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprint("c", i)
			for j := 1; j <= 10; j++ {
				st := status(j)
				errs <- s.SaveAttestations(ctx, []store.Update{{AgentID: id, Created: agent(id).Created, Status: st, Result: store.Result{AgentID: id, Time: st.LastAttested, State: st.State}}})
				_, err := s.GetAgent(ctx, id)
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		a, err := s.GetAgent(ctx, fmt.Sprint("c", i))
		if err != nil || a.Progress.LogOffset != 100 {
			t.Fatalf("agent %d: %+v, %v", i, a, err)
		}
	}
}

func testDurable(t *testing.T, s store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	a := agent("d")
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	st := status(7)
	if err := s.SaveAttestations(ctx, []store.Update{{AgentID: "d", Created: a.Created, Status: st, Result: store.Result{AgentID: "d", Time: st.LastAttested, State: st.State}}}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	defer s.Close()
	got, err := s.GetAgent(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	a.Status = st
	same(t, got, a)
}

func event(id, agent, typ string, sec int64) store.Event {
	return store.Event{ID: id, AgentID: agent, Type: typ, Time: time.Unix(1700000000+sec, 0).UTC(), Body: []byte(`{"id":"` + id + `"}`)}
}

func ids(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func checkEvents(t *testing.T, what string, got []store.Event, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(ids(got), want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %v, want %v", what, ids(got), want)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("%s: seq not increasing: %d then %d", what, got[i-1].Seq, got[i].Seq)
		}
	}
	for _, e := range got {
		if string(e.Body) != `{"id":"`+e.ID+`"}` || e.AgentID == "" || e.Type == "" || e.Time.IsZero() {
			t.Fatalf("%s: event %+v", what, e)
		}
	}
}

func testOutbox(t *testing.T, s store.Store) {
	defer s.Close()
	// Events before a receiver exists are not its to deliver.
	if err := s.AppendEvents(ctx, []store.Event{event("e0", "a", "enrolled", 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Undelivered(ctx, "r1", 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Undelivered(unknown receiver) = %v", err)
	}
	if err := s.MarkDelivered(ctx, "r1", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MarkDelivered(unknown receiver) = %v", err)
	}
	if _, err := s.AddReceiver(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Undelivered(ctx, "r1", 10)
	checkEvents(t, "Undelivered after AddReceiver", got, err)

	// Events with an update go in its transaction; an update dropped
	// (agent gone, or enrolled again) drops its events.
	a := agent("a")
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []store.Event{event("e1", "a", "enrolled", 1)}); err != nil {
		t.Fatal(err)
	}
	st := status(1)
	err = s.SaveAttestations(ctx, []store.Update{
		{AgentID: "a", Created: a.Created, Status: st, Result: store.Result{AgentID: "a", Time: st.LastAttested, State: st.State},
			Events: []store.Event{event("e2", "a", "reboot", 2), event("e3", "a", "trusted", 2)}},
		{AgentID: "a", Created: a.Created, Status: st, Result: store.Result{AgentID: "a", Time: st.LastAttested, State: st.State}},
		{AgentID: "gone", Created: a.Created, Status: st, Result: store.Result{AgentID: "gone", Time: st.LastAttested},
			Events: []store.Event{event("lost1", "gone", "failed", 3)}},
		{AgentID: "a", Created: a.Created.Add(-time.Hour), Status: st, Result: store.Result{AgentID: "a", Time: st.LastAttested},
			Events: []store.Event{event("lost2", "a", "failed", 3)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddReceiver(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []store.Event{event("e4", "a", "failed", 4), event("e5", "b", "enrolled", 5)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []store.Event{event("e6", "a", "x", 6), event("e4", "a", "x", 6)}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("AppendEvents(duplicate id) = %v", err)
	}
	got, err = s.Undelivered(ctx, "r1", 10)
	checkEvents(t, "Undelivered(r1)", got, err, "e1", "e2", "e3", "e4", "e5")
	got, err = s.Undelivered(ctx, "r2", 10)
	checkEvents(t, "Undelivered(r2)", got, err, "e4", "e5")
	all, _ := s.Undelivered(ctx, "r1", 10)
	got, err = s.Undelivered(ctx, "r1", 2)
	checkEvents(t, "Undelivered(r1, 2)", got, err, "e1", "e2")
	if err := s.MarkDelivered(ctx, "r1", all[1].Seq); err != nil {
		t.Fatal(err)
	}
	got, err = s.Undelivered(ctx, "r1", 10)
	checkEvents(t, "Undelivered(r1) after mark", got, err, "e3", "e4", "e5")
	// Marks never go back; AddReceiver keeps an existing mark.
	if err := s.MarkDelivered(ctx, "r1", all[0].Seq); err != nil {
		t.Fatal(err)
	}
	if mark, err := s.AddReceiver(ctx, "r1"); err != nil || mark != all[1].Seq {
		t.Fatalf("AddReceiver(r1) = %d, %v, want mark %d", mark, err, all[1].Seq)
	}
	got, err = s.Undelivered(ctx, "r1", 10)
	checkEvents(t, "Undelivered(r1) after a mark back", got, err, "e3", "e4", "e5")

	// The timeline: an agent's events since a time, oldest first, the newest limit.
	got, err = s.AgentEvents(ctx, "a", time.Unix(1700000001, 0), 10)
	checkEvents(t, "AgentEvents(a)", got, err, "e1", "e2", "e3", "e4")
	got, err = s.AgentEvents(ctx, "a", time.Unix(1700000002, 0), 2)
	checkEvents(t, "AgentEvents(a, since 2, 2)", got, err, "e3", "e4")
	got, err = s.AgentEvents(ctx, "nobody", time.Time{}, 10)
	checkEvents(t, "AgentEvents(nobody)", got, err)

	// Pruning keeps what a receiver has not been delivered.
	if err := s.MarkDelivered(ctx, "r2", all[3].Seq); err != nil { // e4
		t.Fatal(err)
	}
	if n, err := s.PruneEvents(ctx, time.Unix(1700000100, 0), 100); err != nil || n != 3 {
		t.Fatalf("PruneEvents = %d, %v, want 3 deleted (e0-e2)", n, err)
	}
	got, err = s.AgentEvents(ctx, "a", time.Time{}, 10)
	checkEvents(t, "AgentEvents(a) after prune", got, err, "e3", "e4")
	got, err = s.Undelivered(ctx, "r1", 10)
	checkEvents(t, "Undelivered(r1) after prune", got, err, "e3", "e4", "e5")
}

// Pruning the outbox deletes at most its limit, the oldest first, only
// what is older than the cut and delivered to every receiver;
// PruneEventsBatches deletes it all in batches.
// testAgentEventsAtomic: an enrollment and a removal store their event
// in the same transaction as the agent: both or neither. A create that
// fails (the id is taken) or an event that cannot be stored (its id is
// taken) leaves no agent change and no event.
func testAgentEventsAtomic(t *testing.T, s store.Store) {
	defer s.Close()
	if _, err := s.AddReceiver(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	a := agent("a")
	if err := s.CreateAgent(ctx, a, event("enr-a", "a", "enrolled", 1)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Undelivered(ctx, "r", 10)
	checkEvents(t, "after CreateAgent with its event", got, err, "enr-a")
	// The id is taken: no second event.
	if err := s.CreateAgent(ctx, agent("a"), event("enr-a2", "a", "enrolled", 2)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateAgent(taken id) = %v", err)
	}
	// The event id is taken: no agent b.
	if err := s.CreateAgent(ctx, agent("b"), event("enr-a", "b", "enrolled", 2)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("CreateAgent with a taken event id = %v", err)
	}
	if _, err := s.GetAgent(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent b stored without its event: %v", err)
	}
	got, err = s.Undelivered(ctx, "r", 10)
	checkEvents(t, "after the failed creates", got, err, "enr-a")
	// A removal whose event cannot be stored removes nothing.
	if err := s.DeleteAgent(ctx, "a", event("enr-a", "a", "removed", 3)); !errors.Is(err, store.ErrExists) {
		t.Fatalf("DeleteAgent with a taken event id = %v", err)
	}
	if _, err := s.GetAgent(ctx, "a"); err != nil {
		t.Fatalf("agent a removed without its event: %v", err)
	}
	if err := s.DeleteAgent(ctx, "a", event("rm-a", "a", "removed", 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, "a", event("rm-a2", "a", "removed", 4)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteAgent(gone) = %v", err)
	}
	got, err = s.Undelivered(ctx, "r", 10)
	checkEvents(t, "after the removal", got, err, "enr-a", "rm-a")
	// Without events they are plain creates and deletes.
	if err := s.CreateAgent(ctx, agent("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Undelivered(ctx, "r", 10)
	checkEvents(t, "after a create and delete without events", got, err, "enr-a", "rm-a")
}

func testPruneEventsBatches(t *testing.T, s store.Store) {
	defer s.Close()
	if _, err := s.AddReceiver(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	var evs []store.Event
	var want []string // e00 ... e29, one a second
	for i := int64(0); i < 30; i++ {
		id := fmt.Sprintf("e%02d", i)
		evs = append(evs, event(id, "a", "x", i))
		want = append(want, id)
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	all, err := s.Undelivered(ctx, "r", 100)
	checkEvents(t, "Undelivered", all, err, want...)
	if err := s.MarkDelivered(ctx, "r", all[19].Seq); err != nil { // e19
		t.Fatal(err)
	}
	if _, err := s.PruneEvents(ctx, time.Unix(1700000100, 0), 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PruneEvents(limit 0) = %v, want ErrInvalid", err)
	}
	// Older than the cut: e00-e24; delivered: e00-e19.
	cut := time.Unix(1700000025, 0)
	n, err := s.PruneEvents(ctx, cut, 7)
	if err != nil || n != 7 {
		t.Fatalf("PruneEvents(limit 7) = %d, %v, want 7", n, err)
	}
	got, err := s.AgentEvents(ctx, "a", time.Time{}, 100)
	checkEvents(t, "after one batch of 7", got, err, want[7:]...)
	total, err := store.PruneEventsBatches(ctx, s, cut, 7, time.Millisecond)
	if err != nil || total != 13 {
		t.Fatalf("PruneEventsBatches = %d, %v, want the other 13 delivered", total, err)
	}
	got, err = s.AgentEvents(ctx, "a", time.Time{}, 100)
	checkEvents(t, "after the batches: the undelivered kept", got, err, want[20:]...)
	got, err = s.Undelivered(ctx, "r", 100)
	checkEvents(t, "Undelivered after the batches", got, err, want[20:]...)
	if n, err := s.PruneEvents(ctx, cut, 7); err != nil || n != 0 {
		t.Fatalf("PruneEvents with nothing delivered and old = %d, %v", n, err)
	}
	if _, err := store.PruneEventsBatches(ctx, s, cut, 0, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PruneEventsBatches(batch 0) = %v, want ErrInvalid", err)
	}
	// Once delivered, the old ones go; the newer than the cut stay.
	if err := s.MarkDelivered(ctx, "r", all[29].Seq); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.PruneEventsBatches(cctx, s, cut, 1, time.Millisecond); err == nil {
		t.Fatal("PruneEventsBatches with a cancelled context succeeded")
	}
	if total, err := store.PruneEventsBatches(ctx, s, cut, 2, 0); err != nil || total != 5 {
		t.Fatalf("PruneEventsBatches after delivery = %d, %v, want 5 (e20-e24)", total, err)
	}
	got, err = s.AgentEvents(ctx, "a", time.Time{}, 100)
	checkEvents(t, "after delivery and pruning", got, err, want[25:]...)
}

func testOutboxDurable(t *testing.T, s store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	if _, err := s.AddReceiver(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []store.Event{event("e1", "a", "enrolled", 1), event("e2", "a", "trusted", 2), event("e3", "a", "failed", 3)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Undelivered(ctx, "r", 10)
	checkEvents(t, "Undelivered", got, err, "e1", "e2", "e3")
	if err := s.MarkDelivered(ctx, "r", got[0].Seq); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	defer s.Close()
	got, err = s.Undelivered(ctx, "r", 10)
	checkEvents(t, "Undelivered after reopen", got, err, "e2", "e3")
	// Sequence numbers keep increasing after a reopen.
	if err := s.AppendEvents(ctx, []store.Event{event("e4", "a", "removed", 4)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Undelivered(ctx, "r", 10)
	checkEvents(t, "Undelivered after an append", got, err, "e2", "e3", "e4")
}

// trustedAt is an update of agent a, trusted at second sec (after
// 1700000000), with heartbeat hb.
func trustedAt(a *store.Agent, sec int64, hb time.Duration) store.Update {
	now := time.Unix(1700000000+sec, 0).UTC()
	st := store.Status{State: store.StateTrusted, Attestations: sec, LastAttested: now, LastTrusted: now,
		Progress: store.Progress{LogOffset: sec}}
	return store.Update{AgentID: a.ID, Created: a.Created, Status: st, Heartbeat: hb,
		Result: store.Result{AgentID: a.ID, Time: now, State: store.StateTrusted, LogOffset: sec, Attestations: sec}}
}

// failedAt is the same, failed with kind and reason.
func failedAt(a *store.Agent, sec int64, hb time.Duration, kind, reason string) store.Update {
	u := trustedAt(a, sec, hb)
	u.Status.State, u.Status.Kind, u.Status.Reasons = store.StateFailed, kind, []string{reason}
	u.Status.LastTrusted = time.Time{}
	u.Result.State, u.Result.Kind, u.Result.Reasons = store.StateFailed, kind, []string{reason}
	return u
}

// unreachableAt is the same, unreachable (no kind) with reason.
func unreachableAt(a *store.Agent, sec int64, hb time.Duration, reason string) store.Update {
	u := failedAt(a, sec, hb, "", reason)
	u.Status.State, u.Result.State = store.StateUnreachable, store.StateUnreachable
	return u
}

// history is an agent's whole kept history, oldest first, as
// "second:state[:heartbeat]".
func history(t *testing.T, s store.Store, id string) []string {
	t.Helper()
	h, err := s.History(ctx, id, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for i := len(h) - 1; i >= 0; i-- {
		e := fmt.Sprintf("%d:%s", h[i].Time.Unix()-1700000000, h[i].State)
		if h[i].Heartbeat {
			e += ":heartbeat"
		}
		out = append(out, e)
	}
	return out
}

func checkHistory(t *testing.T, what string, s store.Store, id string, want ...string) {
	t.Helper()
	if got := history(t, s, id); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
		t.Fatalf("%s: history = %v\nwant %v", what, got, want)
	}
}

// Identical results keep one history row, plus one heartbeat per period;
// every change of outcome keeps a row; the agent's status is always the
// latest.
func testHistoryChanges(t *testing.T, s store.Store) {
	defer s.Close()
	a := agent("h")
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	const hb = 30 * time.Second
	// 100 trusted results, one a second, in batches of 10 (an agent's
	// results also follow one another inside a batch).
	for b := int64(0); b < 10; b++ {
		var batch []store.Update
		for i := b * 10; i < b*10+10; i++ {
			batch = append(batch, trustedAt(a, i, hb))
		}
		if err := s.SaveAttestations(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// Heartbeats come every period plus the agent's jitter.
	want := append([]string{"0:trusted"}, beats("h", hb, 99)...)
	if len(want) != 4 {
		t.Fatalf("jitter of h = %v: want 3 heartbeats in 100 s of 30 s periods", store.HeartbeatJitter("h", hb))
	}
	checkHistory(t, "100 trusted results", s, "h", want...)
	got, err := s.GetAgent(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	if got.Attestations != 99 || got.Progress.LogOffset != 99 || !got.LastAttested.Equal(time.Unix(1700000099, 0)) || got.State != store.StateTrusted {
		t.Fatalf("status after 100 results = %+v, want the latest result's", got.Status)
	}
	h, err := s.History(ctx, "h", 1)
	lastBeat := h0(want[3])
	if err != nil || len(h) != 1 || h[0].Attestations != lastBeat || h[0].LogOffset != lastBeat {
		t.Fatalf("latest history row = %+v, %v, want the heartbeat's own result", h, err)
	}

	// Changes: an operational failure keeps a row; the same failure with
	// another message does not (only its kind counts); unreachable keeps
	// a row, and again with another message none; trusted again keeps a
	// row; a security failure keeps a row, and another reason another
	// row.
	err = s.SaveAttestations(ctx, []store.Update{
		failedAt(a, 100, hb, store.KindOperational, "quote: agent answered 503: tpm busy"),
		failedAt(a, 101, hb, store.KindOperational, "quote: agent answered 500: tpm error"),
		unreachableAt(a, 102, hb, "quote: dial tcp 127.0.0.1:40001: connection refused"),
		unreachableAt(a, 103, hb, "quote: dial tcp 127.0.0.1:40002: connection refused"),
		trustedAt(a, 104, hb),
		trustedAt(a, 105, hb),
		failedAt(a, 106, hb, store.KindSecurity, "policy: /x: not-in-policy (record 3, sha256:00)"),
		failedAt(a, 107, hb, store.KindSecurity, "policy: /x: not-in-policy (record 3, sha256:00)"),
		failedAt(a, 108, hb, store.KindSecurity, "policy: /y: not-in-policy (record 4, sha256:00)"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, "100:failed", "102:unreachable", "104:trusted", "106:failed", "108:failed")
	checkHistory(t, "after changes", s, "h", want...)
	if got, _ := s.GetAgent(ctx, "h"); got == nil || got.Reasons[0] != "policy: /y: not-in-policy (record 4, sha256:00)" {
		t.Fatalf("status after changes = %+v", got)
	}

	// Heartbeat 0: changes only. A clock gone back keeps a heartbeat.
	b := agent("b")
	if err := s.CreateAgent(ctx, b); err != nil {
		t.Fatal(err)
	}
	var batch []store.Update
	for i := int64(0); i < 100; i++ {
		batch = append(batch, trustedAt(b, i, 0))
	}
	batch = append(batch, trustedAt(b, 100, time.Hour), trustedAt(b, -5, time.Hour))
	if err := s.SaveAttestations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "heartbeat 0, then the clock back", s, "b", "0:trusted", "-5:trusted:heartbeat")
	// The other agent's history is its own.
	checkHistory(t, "agent h after b's results", s, "h", want...)

	// Enrolled again (same id, new Created): its first result is a change.
	if err := s.DeleteAgent(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	b.Created = b.Created.Add(time.Second)
	if err := s.CreateAgent(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAttestations(ctx, []store.Update{trustedAt(b, 200, hb)}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "enrolled again", s, "b", "200:trusted")
}

// beats is the heartbeats ("second:trusted:heartbeat") of agent id,
// trusted every second from second 0 (kept) to last, with period hb: each
// is the first result at least hb plus the agent's jitter after the one
// before.
func beats(id string, hb time.Duration, last int64) []string {
	var out []string
	kept := int64(0)
	for i := int64(1); i <= last; i++ {
		if time.Duration(i-kept)*time.Second >= hb+store.HeartbeatJitter(id, hb) {
			out = append(out, fmt.Sprintf("%d:trusted:heartbeat", i))
			kept = i
		}
	}
	return out
}

// h0 is the second of a history entry "second:state...".
func h0(e string) int64 {
	var sec int64
	fmt.Sscanf(e, "%d:", &sec)
	return sec
}

// Agents enrolled together, trusted at the same times, do not keep their
// heartbeats at once: each waits the period plus its own jitter, a fixed
// duration in [0, period/4) from its id.
func testHeartbeatJitter(t *testing.T, s store.Store) {
	defer s.Close()
	for _, p := range []time.Duration{0, 3, time.Hour} {
		for i := 0; i < 1000; i++ {
			id := fmt.Sprintf("agent-%d", i)
			j := store.HeartbeatJitter(id, p)
			if j < 0 || j >= p/4 && j != 0 || j != store.HeartbeatJitter(id, p) {
				t.Fatalf("HeartbeatJitter(%s, %v) = %v, want a fixed value in [0, %v)", id, p, j, p/4)
			}
		}
	}
	// 100 agents, trusted every minute for 80 minutes, heartbeat 1h.
	const n, hb = 100, time.Hour
	var agents []*store.Agent
	for i := 0; i < n; i++ {
		a := agent(fmt.Sprintf("fleet-%03d", i))
		if err := s.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a)
	}
	var batch []store.Update
	for m := int64(0); m <= 80; m++ {
		for _, a := range agents {
			batch = append(batch, trustedAt(a, m*60, hb))
		}
	}
	if err := s.SaveAttestations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	minutes := map[int64]int{}
	for _, a := range agents {
		h := history(t, s, a.ID)
		if len(h) != 2 || h[0] != "0:trusted" {
			t.Fatalf("%s: history %v, want the first result and one heartbeat", a.ID, h)
		}
		// The heartbeat is the first result (each minute) at least an
		// hour and the jitter after the first.
		sec := h0(h[1])
		due := hb + store.HeartbeatJitter(a.ID, hb)
		if time.Duration(sec)*time.Second < due || time.Duration(sec-60)*time.Second >= due || sec >= 75*60+60 {
			t.Fatalf("%s: heartbeat at %ds, want the first minute at or after %v", a.ID, sec, due)
		}
		minutes[sec/60]++
	}
	// Spread over the quarter hour after the hour: without jitter, all 100
	// would be at minute 60.
	if len(minutes) < 10 {
		t.Fatalf("the fleet's heartbeats fall in %d minutes (%v), want them spread", len(minutes), minutes)
	}
	for m, c := range minutes {
		if c > n/4 {
			t.Fatalf("%d of %d heartbeats in minute %d: %v", c, n, m, minutes)
		}
	}
}

// Pruning deletes at most its limit, the oldest first, and only what is
// older than the cut; PruneHistoryBatches deletes it all in batches.
func testPruneBatches(t *testing.T, s store.Store) {
	defer s.Close()
	a, b := agent("pa"), agent("pb")
	for _, x := range []*store.Agent{a, b} {
		if err := s.CreateAgent(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	// 40 changes each: trusted and failed in turn.
	var batch []store.Update
	for i := int64(0); i < 40; i++ {
		for _, x := range []*store.Agent{a, b} {
			if i%2 == 0 {
				batch = append(batch, trustedAt(x, i, time.Hour))
			} else {
				batch = append(batch, failedAt(x, i, time.Hour, store.KindSecurity, "quote-nonce: stale"))
			}
		}
	}
	if err := s.SaveAttestations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if h := history(t, s, "pa"); len(h) != 40 {
		t.Fatalf("history of 40 changes: %d rows", len(h))
	}
	if _, err := s.PruneHistory(ctx, time.Unix(1700000100, 0), 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PruneHistory(limit 0) = %v, want ErrInvalid", err)
	}
	cut := time.Unix(1700000030, 0) // 30 results each are older: 60 rows
	n, err := s.PruneHistory(ctx, cut, 7)
	if err != nil || n != 7 {
		t.Fatalf("PruneHistory(limit 7) = %d, %v", n, err)
	}
	// The 7 oldest went: seconds 0-2 of both agents and second 3 of one.
	ha, hb := history(t, s, "pa"), history(t, s, "pb")
	if len(ha)+len(hb) != 73 || ha[0] < "3:" && hb[0] < "3:" {
		t.Fatalf("after one batch: %d + %d rows, oldest %s, %s", len(ha), len(hb), ha[0], hb[0])
	}
	for _, h := range [][]string{ha, hb} {
		if h[0] != "3:failed" && h[0] != "4:trusted" {
			t.Fatalf("after one batch the oldest row is %s, want second 3 or 4", h[0])
		}
	}
	total, err := store.PruneHistoryBatches(ctx, s, cut, 7, time.Millisecond)
	if err != nil || total != 53 {
		t.Fatalf("PruneHistoryBatches = %d, %v, want the other 53", total, err)
	}
	for _, id := range []string{"pa", "pb"} {
		h := history(t, s, id)
		if len(h) != 10 || h[0] != "30:trusted" || h[9] != "39:failed" {
			t.Fatalf("%s after pruning: %v, want seconds 30-39", id, h)
		}
	}
	if n, err := s.PruneHistory(ctx, cut, 7); err != nil || n != 0 {
		t.Fatalf("PruneHistory with nothing old = %d, %v", n, err)
	}
	if _, err := store.PruneHistoryBatches(ctx, s, cut, 0, 0); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PruneHistoryBatches(batch 0) = %v, want ErrInvalid", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := store.PruneHistoryBatches(cctx, s, time.Unix(1700000100, 0), 1, time.Millisecond); err == nil {
		t.Fatal("PruneHistoryBatches with a cancelled context succeeded")
	}
	// Pruning does not make the next identical result a change: that is
	// decided by the agent's stored outcome, not by the rows left.
	if _, err := store.PruneHistoryBatches(ctx, s, time.Unix(1700000100, 0), 7, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAttestations(ctx, []store.Update{failedAt(a, 41, time.Hour, store.KindSecurity, "quote-nonce: stale")}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "after pruning everything, the same outcome", s, "pa")
}

// What decides a change (the last outcome, the last kept row's time)
// survives a reopen, and so does a pruned history.
func testHistoryDurable(t *testing.T, s store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	a := agent("hd")
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	const hb = time.Minute
	var batch []store.Update
	for i := int64(0); i < 10; i++ {
		batch = append(batch, trustedAt(a, i, hb))
	}
	if err := s.SaveAttestations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	// The heartbeat is due a period plus the agent's jitter after the
	// kept row: at second due (60 to 75).
	due := int64((hb + store.HeartbeatJitter(a.ID, hb) + time.Second - 1) / time.Second)
	beat := fmt.Sprintf("%d:trusted:heartbeat", due)
	if err := s.SaveAttestations(ctx, []store.Update{trustedAt(a, 10, hb), trustedAt(a, due-1, hb)}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "identical results after a reopen", s, "hd", "0:trusted")
	if err := s.SaveAttestations(ctx, []store.Update{trustedAt(a, due, hb), trustedAt(a, due+1, hb)}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "a period and the jitter after the kept row", s, "hd", "0:trusted", beat)
	if n, err := s.PruneHistory(ctx, time.Unix(1700000030, 0), 10); err != nil || n != 1 {
		t.Fatalf("PruneHistory = %d, %v", n, err)
	}
	s = reopen(t, s)
	defer s.Close()
	checkHistory(t, "pruned, after a reopen", s, "hd", beat)
	if err := s.SaveAttestations(ctx, []store.Update{failedAt(a, due+2, hb, store.KindOperational, "quote: timeout")}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, "a change after a reopen", s, "hd", beat, fmt.Sprintf("%d:failed", due+2))
}

// CountAgents counts by state what ListAgents lists, after creations,
// saved attestations and a removal.
func testCountAgents(t *testing.T, s store.Store) {
	defer s.Close()
	count := func() map[string]int {
		t.Helper()
		cs, err := s.CountAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, c := range cs {
			if c.Agents <= 0 || c.Replica != "" {
				t.Fatalf("CountAgents: %+v (a zero count, or a replica without leases)", c)
			}
			m[c.State] += c.Agents
		}
		return m
	}
	if got := count(); len(got) != 0 {
		t.Fatalf("empty store: %v", got)
	}
	for i := range 7 {
		if err := s.CreateAgent(ctx, agent(fmt.Sprintf("c%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var batch []store.Update
	set := func(id, state, kind string) {
		at := time.Unix(1700000100, 0).UTC()
		batch = append(batch, store.Update{AgentID: id, Created: agent(id).Created,
			Status: store.Status{State: state, Kind: kind, Attestations: 1, LastAttested: at},
			Result: store.Result{AgentID: id, Time: at, State: state, Kind: kind}})
	}
	set("c0", store.StateTrusted, "")
	set("c1", store.StateTrusted, "")
	set("c2", store.StateTrusted, "")
	set("c3", store.StateFailed, store.KindSecurity)
	set("c4", store.StateGap, "")
	if err := s.SaveAttestations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	all, err := s.ListAgents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		want[a.State]++
	}
	if got := count(); !reflect.DeepEqual(got, want) || got[store.StateTrusted] != 2 || got[store.StateEnrolled] != 2 {
		t.Fatalf("CountAgents = %v, want %v (2 trusted, 2 enrolled, 1 failed, 1 gap-after-reboot)", got, want)
	}
}
