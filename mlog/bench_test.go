// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
)

// syntheticList returns n ima-ng records (SHA-1 template digests,
// sha256 file digests, paths like a distribution's) in binary form.
func syntheticList(tb testing.TB, n int) []byte {
	tb.Helper()
	var out []byte
	for i := range n {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		r, err := NewRecord(10, TemplateIMANG, FileMeasurement{Algo: digest.SHA256, Digest: d[:], Path: fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%07d.so.1", i)}, digest.SHA1)
		if err != nil {
			tb.Fatal(err)
		}
		out = r.AppendBinary(out)
	}
	return out
}

// BenchmarkParseReplay1M parses a 1,000,000-record list and replays it
// against its SHA-1 PCR value, checking every template digest.
func BenchmarkParseReplay1M(b *testing.B) {
	const n = 1_000_000
	bin := syntheticList(b, n)
	l, err := ParseBinary(bin, Options{})
	if err != nil {
		b.Fatal(err)
	}
	want, err := l.Compute(digest.SHA1)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bin)))
	cpu0 := testenv.CPUTime()
	b.ResetTimer()
	for b.Loop() {
		l, err := ParseBinary(bin, Options{})
		if err != nil {
			b.Fatal(err)
		}
		v, err := l.Replay(want)
		if err != nil || len(v.Records) != n {
			b.Fatalf("replay: %v", err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// The machine may be shared: records per second of this process's CPU
	// time (user+system, GC included) is the per-core figure.
	b.ReportMetric(float64(n)*float64(b.N)/(testenv.CPUTime()-cpu0).Seconds(), "records/cpu-s")
}
