// SPDX-License-Identifier: Apache-2.0

package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
	"github.com/intactsec/intact/store/storetest"
)

// BenchmarkSteadyState is store/postgres' BenchmarkSteadyState on SQLite:
// one verifier's store traffic while it holds n agents at a 2 s interval,
// one op one attestation saved in batches of 256. SQLite runs in the
// verifier's process: its CPU per attestation is the client's.
func BenchmarkSteadyState(b *testing.B) {
	const n, batch = 2000, 256
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(b.TempDir(), "v.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	steady := storetest.NewSteady(b, db, n)
	var updates []store.Update
	b.ResetTimer()
	s0 := testenv.CPUTime()
	for i := 0; i < b.N; i++ {
		updates = append(updates, steady.Update(i))
		if len(updates) == batch || i == b.N-1 {
			if err := db.SaveAttestations(ctx, updates); err != nil {
				b.Fatal(err)
			}
			updates = updates[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((testenv.CPUTime()-s0).Microseconds())/float64(b.N), "client-µs/op")
}
