// SPDX-License-Identifier: Apache-2.0

package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
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
	cert := bytes.Repeat([]byte{0x30}, 480)
	ekCert := bytes.Repeat([]byte{0x31}, 620)
	created := time.Unix(1000, 0)
	for i := 0; i < n; i++ {
		a := &store.Agent{ID: fmt.Sprintf("agent-%05d", i), Addr: "127.0.0.1:40000", CertDER: cert,
			EKPublic: append(bytes.Repeat([]byte{0x23}, 118), byte(i), byte(i>>8)), EKCert: ekCert,
			AKPublic: append(bytes.Repeat([]byte{0x24}, 88), byte(i), byte(i>>8)), EKKey: fmt.Sprintf("%064x", i),
			Policy: "fleet", LogSource: "intact", LogPCR: 13, Created: created}
		a.State = store.StateEnrolled
		if err := db.CreateAgent(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	pcr := map[string][]byte{"sha256": bytes.Repeat([]byte{7}, 32)}
	var updates []store.Update
	b.ResetTimer()
	s0 := selfCPU()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("agent-%05d", i%n)
		now := time.Unix(2000, 0).Add(time.Duration(i) * time.Millisecond)
		st := store.Status{State: store.StateTrusted, Attestations: int64(i/n + 1), LastAttested: now, LastTrusted: now, LastVerified: now,
			Progress: store.Progress{ResetCount: 1, Clock: uint64(i), HaveClock: true, LogOffset: int64(21 + i/n/3), LogPCR: pcr, BootChecked: true, BootLog: store.BootLogNone}}
		updates = append(updates, store.Update{AgentID: id, Created: created, Status: st, Heartbeat: time.Hour,
			Result: store.Result{AgentID: id, Time: now, State: store.StateTrusted, LogOffset: st.Progress.LogOffset, Attestations: st.Attestations}})
		if len(updates) == batch || i == b.N-1 {
			if err := db.SaveAttestations(ctx, updates); err != nil {
				b.Fatal(err)
			}
			updates = updates[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((selfCPU()-s0).Microseconds())/float64(b.N), "client-µs/op")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
