// SPDX-License-Identifier: Apache-2.0

package postgres_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/intactsec/intact/store"
)

// A replica's lease rounds and its own writer lock the same agent rows:
// they must take the locks in the same order, or PostgreSQL aborts one
// with a deadlock (SQLSTATE 40P01; seen in bench/fleet with two
// replicas: the batch was kept and saved again, but every deadlock is a
// second of lock waits and a retried batch). The test runs lease rounds
// against fenced batches of the same replica's agents, in shuffled order,
// for a few seconds, and fails on any deadlock.
func TestLeaseRoundsAndWriterDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	db := openPG(t)
	ids := addAgents(t, db, 300)
	const ttl = 5 * time.Second
	if _, err := db.Lease(ctx, "r", ttl); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * time.Second)
	var mu sync.Mutex
	var deadlocks, leases, saves int
	isDeadlock := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "40P01"
	}
	var wg sync.WaitGroup
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if isDeadlock(err) {
			deadlocks++
			return
		}
		t.Errorf("%s: %v", what, err)
	}
	// one lease loop and one writer, as in a replica
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			if _, err := db.Lease(ctx, "r", ttl); err != nil {
				fail("Lease", err)
			}
			mu.Lock()
			leases++
			mu.Unlock()
		}
	}()
	for w := 0; w < 1; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			n := int64(0)
			for time.Now().Before(deadline) {
				batch := randomBatch(rnd, ids, 200, &n)
				if _, err := db.SaveAttestationsAs(ctx, "r", batch); err != nil {
					fail("SaveAttestationsAs", err)
				}
				mu.Lock()
				saves++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d lease rounds, %d batches, %d deadlocks", leases, saves, deadlocks)
	if deadlocks > 0 {
		t.Fatalf("%d deadlocks between lease rounds and fenced writes of one replica", deadlocks)
	}
}

// When a replica joins, the others give back their excess leases (the
// highest ids) while their writers save: the release must lock in the
// writer's order too. Lease rounds of r with a second replica q joining
// and leaving (r releases half, takes it back) against r's fenced writer,
// for a few seconds: no deadlock. (The release locked in descending id
// order before: a deadlock in bench/fleet -replicas 2 at 6,000 agents.)
func TestLeaseReleaseAndWriterDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	db := openPG(t)
	ids := addAgents(t, db, 300)
	const ttl = 5 * time.Second
	if _, err := db.Lease(ctx, "r", ttl); err != nil {
		t.Fatal(err)
	}
	isDeadlock := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "40P01"
	}
	deadline := time.Now().Add(4 * time.Second)
	var mu sync.Mutex
	var deadlocks, releases, saves int
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if isDeadlock(err) {
			deadlocks++
			return
		}
		t.Errorf("%s: %v", what, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for time.Now().Before(deadline) {
			if _, err := db.Lease(ctx, "q", ttl); err != nil { // q joins
				fail("Lease q", err)
			}
			held, err := db.Lease(ctx, "r", ttl) // r gives back its excess
			if err != nil {
				fail("Lease r", err)
			}
			if err := db.ReleaseLeases(ctx, "q"); err != nil { // q leaves
				fail("ReleaseLeases q", err)
			}
			if _, err := db.Lease(ctx, "r", ttl); err != nil { // r takes all back
				fail("Lease r", err)
			}
			mu.Lock()
			if len(held) < len(ids) {
				releases++
			}
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(7, 1))
		n := int64(0)
		for time.Now().Before(deadline) {
			batch := randomBatch(rnd, ids, 250, &n)
			if _, err := db.SaveAttestationsAs(ctx, "r", batch); err != nil {
				fail("SaveAttestationsAs", err)
			}
			mu.Lock()
			saves++
			mu.Unlock()
		}
	}()
	wg.Wait()
	t.Logf("%d rounds that released leases, %d batches, %d deadlocks", releases, saves, deadlocks)
	if releases == 0 {
		t.Fatal("no round released a lease: the test tested nothing")
	}
	if deadlocks > 0 {
		t.Fatalf("%d deadlocks between lease releases and fenced writes of one replica", deadlocks)
	}
}

// randomBatch is a writer's batch of k trusted attestations of agents
// picked at random from ids, numbered on from *n.
func randomBatch(rnd *rand.Rand, ids []string, k int, n *int64) []store.Update {
	var batch []store.Update
	for _, i := range rnd.Perm(len(ids))[:k] {
		*n++
		now := time.Unix(2000, 0).Add(time.Duration(*n) * time.Millisecond)
		batch = append(batch, store.Update{AgentID: ids[i], Created: time.Unix(1000, 0),
			Status: store.Status{State: store.StateTrusted, Attestations: *n, LastAttested: now},
			Result: store.Result{AgentID: ids[i], Time: now, State: store.StateTrusted, Attestations: *n}})
	}
	return batch
}
