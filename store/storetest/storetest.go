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
	t.Run("Attestations", func(t *testing.T) { testAttestations(t, open(t)) })
	t.Run("Policies", func(t *testing.T) { testPolicies(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open(t)) })
	if reopen != nil {
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
		!bytes.Equal(got.AKPublic, want.AKPublic) || got.Policy != want.Policy || got.LogSource != want.LogSource || got.LogPCR != want.LogPCR ||
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
	if err := s.PruneHistory(ctx, time.Unix(1700000004, 0)); err != nil {
		t.Fatal(err)
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
	if err := s.PruneEvents(ctx, time.Unix(1700000100, 0)); err != nil {
		t.Fatal(err)
	}
	got, err = s.AgentEvents(ctx, "a", time.Time{}, 10)
	checkEvents(t, "AgentEvents(a) after prune", got, err, "e3", "e4")
	got, err = s.Undelivered(ctx, "r1", 10)
	checkEvents(t, "Undelivered(r1) after prune", got, err, "e3", "e4", "e5")
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
