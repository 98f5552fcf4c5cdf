// SPDX-License-Identifier: Apache-2.0

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/postgres"
)

func openPG(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.NewDB(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addAgents(t *testing.T, db store.Store, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("a%02d", i)
		a := &store.Agent{ID: id, Addr: "127.0.0.1:1", CertDER: []byte{1}, EKPublic: []byte{byte(i)}, AKPublic: []byte{byte(i), 1},
			Policy: "p", LogSource: "intact", LogPCR: 13, Created: time.Unix(1000, 0)}
		a.State = store.StateEnrolled
		if err := db.CreateAgent(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// Leases share the agents between live replicas, move them when a replica
// joins, and hand a dead replica's agents to the others once its leases
// lapse; a write fenced by a lease the writer lost is dropped.
func TestLeases(t *testing.T) {
	ctx := context.Background()
	db := openPG(t)
	all := addAgents(t, db, 10)
	const ttl = 600 * time.Millisecond
	lease := func(r string) []string {
		t.Helper()
		ids, err := db.Lease(ctx, r, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if got := lease("A"); !slices.Equal(got, all) {
		t.Fatalf("alone, A holds %v", got)
	}
	// B joins: nothing is free yet; A gives back the excess, B takes it.
	if got := lease("B"); len(got) != 0 {
		t.Fatalf("B took live leases: %v", got)
	}
	a := lease("A")
	b := lease("B")
	if len(a) != 5 || len(b) != 5 {
		t.Fatalf("after B joined: A %v, B %v", a, b)
	}
	for _, id := range a {
		if slices.Contains(b, id) {
			t.Fatalf("%s held by both", id)
		}
	}
	// fencing: A cannot write an agent B holds
	upd := func(id string) store.Update {
		return store.Update{AgentID: id, Created: time.Unix(1000, 0),
			Status: store.Status{State: store.StateTrusted, Attestations: 7},
			Result: store.Result{AgentID: id, Time: time.Unix(2000, 0), State: store.StateTrusted}}
	}
	dropped, err := db.SaveAttestationsAs(ctx, "A", []store.Update{upd(b[0]), upd(a[0]), upd(b[0])})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{b[0]}) {
		t.Errorf("SaveAttestationsAs dropped %v, want [%s] (once)", dropped, b[0])
	}
	if ag, _ := db.GetAgent(ctx, b[0]); ag.Attestations != 0 {
		t.Errorf("A wrote %s, which B holds", b[0])
	}
	if ag, _ := db.GetAgent(ctx, a[0]); ag.Attestations != 7 || ag.Lease.Replica != "A" {
		t.Errorf("A's own write: %+v", ag)
	}
	// A dies (stops renewing): within a ttl and one round B holds all.
	died := time.Now()
	var got []string
	for time.Since(died) < 10*ttl {
		if got = lease("B"); len(got) == 10 {
			break
		}
		time.Sleep(ttl / 3) // time under test: B's lease rounds, A's lease lapsing
	}
	took := time.Since(died)
	if len(got) != 10 || took > 2*ttl {
		t.Fatalf("B holds %d agents %v after A died (want 10 within 2 ttl)", len(got), took)
	}
	t.Logf("B took over A's agents %v after A's last renewal (ttl %v)", took.Round(time.Millisecond), ttl)
	// A comes back: it gets a share again, without an operator
	lease("A")
	lease("B")
	if a = lease("A"); len(a) != 5 {
		t.Fatalf("A rejoined with %v", a)
	}
	rs, err := db.Replicas(ctx, ttl)
	if err != nil || rs["A"] != 5 || rs["B"] != 5 {
		t.Fatalf("Replicas = %v, %v", rs, err)
	}
	// a clean shutdown hands everything over at once
	if err := db.ReleaseLeases(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	if got := lease("B"); len(got) != 10 {
		t.Fatalf("after A released: B holds %v", got)
	}
	// a new agent is claimed by the replica that enrolls it
	addAgents(t, db, 0)
	ok, err := db.ClaimAgent(ctx, "B", all[0], ttl)
	if err != nil || !ok {
		t.Fatalf("ClaimAgent of its own: %v %v", ok, err)
	}
	if ok, _ := db.ClaimAgent(ctx, "C", all[0], ttl); ok {
		t.Fatal("C claimed a live lease")
	}
}

// A lease round of a replica that keeps its agents renews its leases by
// its own row in replicas: no agent's row is written (each renewal
// rewrote every held agent's whole row before, three times an interval:
// most of the server's CPU per attestation). The agents' row versions
// (xmin) must not move over rounds that change no owner.
func TestLeaseRoundWritesNoAgentRow(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addAgents(t, db, 20)
	const ttl = 5 * time.Second
	if ids, err := db.Lease(ctx, "A", ttl); err != nil || len(ids) != 20 {
		t.Fatalf("first round: %v %v", ids, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	versions := func() string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, `SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM agents`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := versions()
	for range 5 {
		if ids, err := db.Lease(ctx, "A", ttl); err != nil || len(ids) != 20 {
			t.Fatalf("renewal: %v %v", ids, err)
		}
	}
	if after := versions(); after != before {
		t.Fatalf("lease renewals wrote agent rows:\nbefore %s\nafter  %s", before, after)
	}
	// and the leases are live: a fenced write of A goes through
	if _, err := db.SaveAttestationsAs(ctx, "A", []store.Update{{AgentID: "a00", Created: time.Unix(1000, 0),
		Status: store.Status{State: store.StateTrusted, Attestations: 1},
		Result: store.Result{AgentID: "a00", Time: time.Unix(2000, 0), State: store.StateTrusted}}}); err != nil {
		t.Fatal(err)
	}
	if a, err := db.GetAgent(ctx, "a00"); err != nil || a.Attestations != 1 || a.Lease.Replica != "A" || !a.Lease.Until.After(time.Now()) {
		t.Fatalf("after a renewal A's write: %+v %v", a, err)
	}
}

// CountAgents counts by state and by the replica holding a live lease;
// agents whose owner's lease lapsed count under no replica.
func TestCountAgentsByReplica(t *testing.T) {
	ctx := context.Background()
	db := openPG(t)
	addAgents(t, db, 6)
	const ttl = 3 * time.Second // the first count comes well within it, even on a loaded machine
	if _, err := db.Lease(ctx, "A", ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveAttestationsAs(ctx, "A", []store.Update{{AgentID: "a00", Created: time.Unix(1000, 0),
		Status: store.Status{State: store.StateTrusted}, Result: store.Result{AgentID: "a00", Time: time.Unix(2000, 0), State: store.StateTrusted}}}); err != nil {
		t.Fatal(err)
	}
	count := func() map[string]int {
		t.Helper()
		cs, err := db.CountAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, c := range cs {
			m[c.Replica+"/"+c.State] += c.Agents
		}
		return m
	}
	if got, want := count(), map[string]int{"A/trusted": 1, "A/enrolled": 5}; !maps.Equal(got, want) {
		t.Fatalf("CountAgents = %v, want %v", got, want)
	}
	time.Sleep(ttl + 100*time.Millisecond) // time under test: A's lease lapses
	if got, want := count(), map[string]int{"/trusted": 1, "/enrolled": 5}; !maps.Equal(got, want) {
		t.Fatalf("after A's lease lapsed: CountAgents = %v, want %v", got, want)
	}
}

// A webhook receiver's delivery lease: one holder at a time, renewed by
// it, taken by another once it lapses; marks are fenced by it; a clean
// shutdown releases it.
func TestReceiverLease(t *testing.T) {
	ctx := context.Background()
	db := openPG(t)
	if _, err := db.AddReceiver(ctx, "https://hook"); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendEvents(ctx, []store.Event{{ID: "e1", AgentID: "a", Type: "trusted", Time: time.Unix(1, 0)}}); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second // A's take, B's try and A's renewal come well within it
	take := func(r string) bool {
		t.Helper()
		ok, err := db.LeaseReceiver(ctx, r, "https://hook", ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("A") || take("B") || !take("A") {
		t.Fatal("A takes and renews the delivery lease, B does not get it meanwhile")
	}
	if err := db.MarkDeliveredAs(ctx, "B", "https://hook", 1); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("B's mark without the lease: %v, want ErrLeaseLost", err)
	}
	if evs, _ := db.Undelivered(ctx, "https://hook", 10); len(evs) != 1 {
		t.Fatalf("B's refused mark moved the mark: undelivered %v", evs)
	}
	if _, err := db.LeaseReceiver(ctx, "A", "https://nope", ttl); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown receiver: %v", err)
	}
	time.Sleep(ttl + 100*time.Millisecond) // A stops renewing: time is the thing under test
	if err := db.MarkDeliveredAs(ctx, "A", "https://hook", 1); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("A's mark after its lease lapsed: %v, want ErrLeaseLost", err)
	}
	if !take("B") || take("A") {
		t.Fatal("B takes the lapsed lease, A does not get it back")
	}
	if err := db.MarkDeliveredAs(ctx, "B", "https://hook", 1); err != nil {
		t.Fatal(err)
	}
	if evs, _ := db.Undelivered(ctx, "https://hook", 10); len(evs) != 0 {
		t.Fatalf("undelivered after B's mark: %v", evs)
	}
	if err := db.ReleaseLeases(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	if !take("A") {
		t.Fatal("after B released its leases, A does not get the delivery lease")
	}
}
