// SPDX-License-Identifier: Apache-2.0

package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/postgres"
	"github.com/intactsec/intact/store/storetest"
)

// serverCPU is the CPU time of the PostgreSQL server behind dsn: its
// postmaster, the children it has reaped and those alive (backends,
// walwriter, checkpointer, autovacuum), from /proc.
func serverCPU(tb testing.TB, dsn string) func() time.Duration {
	tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	var dir string
	err = c.QueryRow(ctx, `SELECT setting FROM pg_settings WHERE name = 'data_directory'`).Scan(&dir)
	c.Close(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		tb.Fatal(err)
	}
	return func() time.Duration { return treeCPU(pid) }
}

// stat returns /proc/PID/stat's fields after the command name.
func stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func ticks(f []string, idx ...int) time.Duration {
	var n int64
	for _, i := range idx {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		n += v
	}
	return time.Duration(n) * 10 * time.Millisecond
}

func treeCPU(pid int) time.Duration {
	f := stat(pid)
	if len(f) < 15 {
		return 0
	}
	total := ticks(f, 11, 12, 13, 14) // utime stime cutime cstime
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if cf := stat(p); len(cf) > 12 && cf[1] == strconv.Itoa(pid) {
			total += ticks(cf, 11, 12)
		}
	}
	return total
}

// BenchmarkSteadyState is one replica's store traffic while it holds n
// agents at a 2 s interval: one op is one attestation saved (fenced, in
// batches of 256, as the writer flushes at 2,500/s), with the lease rounds
// (three an interval) at their rate. It reports the server's CPU per
// attestation beside the client's time.
func BenchmarkSteadyState(b *testing.B) {
	const n, batch = 2000, 256
	ctx := context.Background()
	dsn := pgtest.NewDB(b)
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	steady := storetest.NewSteady(b, db, n)
	const ttl = 2 * time.Second
	if _, err := db.Lease(ctx, "r1", ttl); err != nil {
		b.Fatal(err)
	}
	cpu := serverCPU(b, dsn)
	var updates []store.Update
	perRound := n / 3 // attestations between lease rounds: n/2 per second, rounds every 2/3 s
	b.ResetTimer()
	c0, s0 := cpu(), testenv.CPUTime()
	for i := 0; i < b.N; i++ {
		updates = append(updates, steady.Update(i))
		if len(updates) == batch || i == b.N-1 {
			if _, err := db.SaveAttestationsAs(ctx, "r1", updates); err != nil {
				b.Fatal(err)
			}
			updates = updates[:0]
		}
		if i%perRound == perRound-1 {
			if _, err := db.Lease(ctx, "r1", ttl); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	c1, s1 := cpu(), testenv.CPUTime()
	b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "server-µs/op")
	b.ReportMetric(float64((s1-s0).Microseconds())/float64(b.N), "client-µs/op")
}
