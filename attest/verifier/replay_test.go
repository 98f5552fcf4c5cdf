package verifier_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/store"
)

// fileRecord is an ima-ng record of path on pcr (SHA-1 template digest).
func fileRecord(t testing.TB, pcr int, path string) mlog.Record {
	t.Helper()
	d := sha256.Sum256([]byte(path))
	r, err := mlog.NewRecord(pcr, mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: d[:], Path: path}, digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A record of a PCR the quote does not cover (here 11, in the middle of
// a genuine list on PCR 13) does not change the quoted PCR: the quote
// says nothing of it, and it is never judged by the policy. The old
// replay moved it to the verified records with the others and failed
// the agent on it.
func TestAppraiseForeignPCRNotEvaluated(t *testing.T) {
	f := newSim(t)
	files := f.measure(t, "a", "b")
	p := f.appraiser(t, files...)
	nonce := bytes.Repeat([]byte{3}, 32)
	ev := f.evidence(t, p, nonce, 0, nil, attest.MaxLogChunk)
	l, err := mlog.ParseBinary(ev.Quote.Log.Data, mlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := l.UnverifiedRecords()
	if len(recs) != 4 { // boot_aggregate, boot id, a, b
		t.Fatalf("%d records, want 4", len(recs))
	}
	foreign := fileRecord(t, 11, "/foreign/not-in-policy")
	var data []byte
	for i, r := range []mlog.Record{recs[0], recs[1], recs[2], foreign, recs[3]} {
		_ = i
		data = r.AppendBinary(data)
	}
	ev.Quote.Log.Data, ev.Quote.Log.Count = data, 5
	got, err := p.Appraise(store.Progress{}, ev, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) != 0 || got.MoreFindings != 0 {
		t.Fatalf("the foreign-pcr record was judged: %+v", got.Findings)
	}
	if got.Progress.LogOffset != 5 {
		t.Fatalf("offset %d after the 5 records, want 5", got.Progress.LogOffset)
	}
	// The same record on the quoted PCR is judged (and breaks the
	// replay, as it extended nothing).
	onLog := fileRecord(t, logPCR, "/foreign/not-in-policy")
	data = nil
	for _, r := range []mlog.Record{recs[0], recs[1], recs[2], onLog, recs[3]} {
		data = r.AppendBinary(data)
	}
	ev = f.evidence(t, p, nonce, 0, nil, attest.MaxLogChunk)
	ev.Quote.Log.Data, ev.Quote.Log.Count = data, 5
	_, err = p.Appraise(store.Progress{}, ev, nonce)
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != verifier.ReasonLogReplay {
		t.Fatalf("record on the quoted pcr outside the tpm: %v, want %s", err, verifier.ReasonLogReplay)
	}
}

// endless answers every list request with a chunk of well-formed
// records on the quoted PCR that never reach the quoted value, and
// counts the bytes served.
type endless struct {
	data  []byte
	count int64
	sent  int64
	calls int
}

func newEndless(t testing.TB, n int) *endless {
	e := &endless{count: int64(n)}
	for i := range n {
		r := fileRecord(t, logPCR, fmt.Sprintf("/endless/%08d", i))
		e.data = r.AppendBinary(e.data)
	}
	return e
}

func (e *endless) chunk(start int64) (*attest.LogChunk, error) {
	e.calls++
	e.sent += int64(len(e.data))
	return &attest.LogChunk{Source: attest.LogIntact, Start: start, Count: e.count, Data: e.data, More: true}, nil
}

// An agent answering with endless well-formed records that never reach
// the quoted PCR fails with log-replay once the records or bytes of one
// attestation pass the caps, after reading about the cap and no more;
// the heap stays about one chunk, whatever the agent sends.
func TestAppraiseEndlessListCapped(t *testing.T) {
	f := newSim(t)
	f.measure(t, "a")
	for _, tc := range []struct {
		name                 string
		maxRecords, maxBytes int64
	}{
		{"records", 20_000, 1 << 30},
		{"bytes", 1 << 30, 2 << 20},
		{"requests", 1 << 30, 1 << 30}, // a record at a time
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.appraiser(t)
			p.MaxRecords, p.MaxBytes = tc.maxRecords, tc.maxBytes
			nonce := bytes.Repeat([]byte{4}, 32)
			ev := f.evidence(t, p, nonce, 0, nil, attest.MaxLogChunk)
			e := newEndless(t, 1000)
			if tc.name == "requests" {
				e = newEndless(t, 1)
			}
			ev.Quote.Log = nil
			ev.More = e.chunk
			_, err := p.Appraise(store.Progress{}, ev, nonce)
			var se *verifier.SecurityError
			if !errors.As(err, &se) || se.Reason != verifier.ReasonLogReplay || !strings.Contains(se.Detail, "more than an attestation") {
				t.Fatalf("endless list: %v, want %s past the cap", err, verifier.ReasonLogReplay)
			}
			if e.count*int64(e.calls) > tc.maxRecords+e.count || e.sent > tc.maxBytes+int64(len(e.data)) || e.calls > verifier.MaxFetches+1 {
				t.Fatalf("read %d chunks (%d bytes) for caps of %d records, %d bytes", e.calls, e.sent, tc.maxRecords, tc.maxBytes)
			}
			t.Logf("%v after %d chunks, %d bytes", err, e.calls, e.sent)
		})
	}
	// The default caps: the heap after a capped attestation of 64 MiB of
	// records is about what it was (nothing kept), and the peak of the
	// walk is bounded by chunks, not by the list.
	p := f.appraiser(t)
	nonce := bytes.Repeat([]byte{6}, 32)
	ev := f.evidence(t, p, nonce, 0, nil, attest.MaxLogChunk)
	e := newEndless(t, 30_000) // ~4 MiB a chunk, like an agent's
	ev.Quote.Log = nil
	var peak uint64
	ev.More = func(start int64) (*attest.LogChunk, error) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		return e.chunk(start)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	_, err := p.Appraise(store.Progress{}, ev, nonce)
	if !errors.Is(err, verifier.ErrSecurity) {
		t.Fatalf("endless list with the default caps: %v", err)
	}
	if e.sent < verifier.DefaultMaxBytes && e.count*int64(e.calls) < verifier.DefaultMaxRecords {
		t.Fatalf("stopped after %d bytes, before the caps: %v", e.sent, err)
	}
	t.Logf("default caps: %v; %d chunks, %d MiB read; heap in use %d MiB before, peak %d MiB", err, e.calls, e.sent>>20, before>>20, peak>>20)
	if peak > before+64<<20 {
		t.Errorf("heap in use peaked at %d MiB (from %d MiB): the walk keeps what it read", peak>>20, before>>20)
	}
}
