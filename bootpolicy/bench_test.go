// SPDX-License-Identifier: Apache-2.0

package bootpolicy_test

import (
	"os"
	"testing"
	"time"

	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/internal/testenv"
)

// BenchmarkParseVerifyJudge is the verifier's work on a boot log per
// boot: parse a real event log (ubuntu-2104-no-secure-boot.bin, 105
// events, three banks), replay it against the quoted sha256 PCRs 0-9
// (eventlog.Verify) and judge the verified events against the policy
// learned from it. docs/benchmarks.md records the numbers.
func BenchmarkParseVerifyJudge(b *testing.B) {
	raw, err := os.ReadFile(testenv.Testdata(b, "tcg-eventlogs/ubuntu-2104-no-secure-boot.bin"))
	if err != nil {
		b.Fatal(err)
	}
	l, err := eventlog.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	vals, err := l.Replay()
	if err != nil {
		b.Fatal(err)
	}
	trusted := digest.PCRs{digest.SHA256: map[int][]byte{}}
	for i := 0; i <= 9; i++ {
		if v, ok := vals[digest.SHA256][i]; ok {
			trusted[digest.SHA256][i] = v
		}
	}
	evs, _ := l.UnverifiedEvents(digest.SHA256)
	p, err := bootpolicy.Generate("bench", digest.SHA256, evs)
	if err != nil {
		b.Fatal(err)
	}
	c, err := bootpolicy.Compile(p)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.Run("parse+verify+judge", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			l, err := eventlog.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			verified, err := l.Verify(trusted)
			if err != nil {
				b.Fatal(err)
			}
			if fs := c.Evaluate(verified, now); len(fs) != 0 {
				b.Fatal(fs)
			}
		}
	})
	b.Run("judge", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if fs := c.Evaluate(evs, now); len(fs) != 0 {
				b.Fatal(fs)
			}
		}
	})
}

// cpuPerOp reports the process's CPU time (user+system) per operation:
// on a machine loaded by other work the wall time per operation is
// inflated by waiting for a core; this is not.
func cpuPerOp(b *testing.B) func() {
	start := testenv.CPUTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((testenv.CPUTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
