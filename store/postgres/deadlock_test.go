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
				order := rnd.Perm(len(ids))
				var batch []store.Update
				for _, i := range order[:200] {
					n++
					now := time.Unix(2000, 0).Add(time.Duration(n) * time.Millisecond)
					st := store.Status{State: store.StateTrusted, Attestations: n, LastAttested: now}
					batch = append(batch, store.Update{AgentID: ids[i], Created: time.Unix(1000, 0), Status: st,
						Result: store.Result{AgentID: ids[i], Time: now, State: store.StateTrusted, Attestations: n}})
				}
				if err := db.SaveAttestationsAs(ctx, "r", batch); err != nil {
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
