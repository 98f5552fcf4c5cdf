// SPDX-License-Identifier: Apache-2.0

package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
)

// fill gives agent a n history rows (alternating outcomes), a second
// apart from 1700000000.
func fill(t *testing.T, db *sqlite.DB, a *store.Agent, n int) {
	t.Helper()
	for i := 0; i < n; {
		var batch []store.Update
		for ; i < n && len(batch) < 2000; i++ {
			now := time.Unix(int64(1700000000+i), 0).UTC()
			r := store.Result{AgentID: a.ID, Time: now, State: store.StateTrusted}
			if i%2 == 1 {
				r.State, r.Kind, r.Reasons = store.StateFailed, store.KindSecurity, []string{"quote-nonce: stale"}
			}
			batch = append(batch, store.Update{AgentID: a.ID, Created: a.Created, Status: store.Status{State: r.State}, Result: r})
		}
		if err := db.SaveAttestations(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
}

// A large backlog pruned in batches holds a writer back for about one
// batch; the same backlog in one statement holds it for all of it.
func TestPruneBatchesDoNotStallWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a history of 100,000 rows")
	}
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := &store.Agent{ID: "a", Addr: "x:1", CertDER: []byte{1}, EKPublic: []byte{1}, AKPublic: []byte{1}, Policy: "p",
		LogSource: "intact", LogPCR: 13, Created: time.Unix(1600000000, 0).UTC()}
	w := &store.Agent{ID: "w", Addr: "x:1", CertDER: []byte{1}, EKPublic: []byte{1}, AKPublic: []byte{1}, Policy: "p",
		LogSource: "intact", LogPCR: 13, Created: time.Unix(1600000000, 0).UTC()}
	for _, x := range []*store.Agent{a, w} {
		if err := db.CreateAgent(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	const n = 100000
	cut := time.Unix(1700000000+n, 0)
	// maxWait runs prune while a writer saves a result every 2ms, and
	// returns the writer's longest save.
	maxWait := func(prune func() error) (time.Duration, int) {
		var done atomic.Bool
		var saved atomic.Int64
		waits := make(chan time.Duration)
		go func() {
			var worst time.Duration
			saves := 0
			for i := 0; !done.Load(); i++ {
				start := time.Now()
				u := store.Update{AgentID: "w", Created: w.Created, Status: store.Status{State: store.StateTrusted},
					Result: store.Result{AgentID: "w", Time: time.Unix(1800000000+int64(i), 0), State: store.StateTrusted, Reasons: []string{fmt.Sprint(i)}}}
				if err := db.SaveAttestations(ctx, []store.Update{u}); err != nil {
					t.Error(err)
				}
				worst = max(worst, time.Since(start))
				saves++
				saved.Add(1)
				time.Sleep(2 * time.Millisecond) // time under test: a save every 2 ms, a steady writer
			}
			waits <- worst
			waits <- time.Duration(saves)
		}()
		// The writer runs when prune starts (it used to be given 20 ms).
		testenv.WaitFor(t, 20*time.Second, "the writer's first saves", func() bool { return saved.Load() >= 3 })
		if err := prune(); err != nil {
			t.Fatal(err)
		}
		done.Store(true)
		return <-waits, int(<-waits)
	}

	fill(t, db, a, n)
	start := time.Now()
	var deleted int64
	batched, saves := maxWait(func() (err error) {
		deleted, err = store.PruneHistoryBatches(ctx, db, cut, 1000, 5*time.Millisecond)
		return err
	})
	took := time.Since(start)
	if deleted != n {
		t.Fatalf("deleted %d, want %d", deleted, n)
	}
	t.Logf("batched prune of %d rows (1000 a batch): %v; the writer saved %d times meanwhile, its longest save %v", n, took, saves, batched)

	fill(t, db, a, n)
	start = time.Now()
	whole, saves := maxWait(func() error {
		k, err := db.PruneHistory(ctx, cut, n+10)
		if err == nil && k != n {
			err = fmt.Errorf("deleted %d, want %d", k, n)
		}
		return err
	})
	t.Logf("one statement for %d rows: %v; the writer saved %d times meanwhile, its longest save %v", n, time.Since(start), saves, whole)
	// Batched, the writer waits about one batch (milliseconds); in one
	// statement, about the whole delete. (Lenient: a loaded machine
	// stretches both.)
	if batched > 100*time.Millisecond && batched >= whole/2 {
		t.Errorf("a writer waited up to %v during a batched prune, %v during one statement", batched, whole)
	}
}
