// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

// simFixture: a simulator TPM with an AK and intact's list.
type simFixture struct {
	tp   *tpm.TPM
	ak   *tpm.AK
	list string
	m    *agent.Measurer
	dir  string
}

func newSim(t testing.TB) *simFixture {
	t.Helper()
	tp, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	f := &simFixture{tp: tp, ak: ak, dir: t.TempDir()}
	f.list = filepath.Join(f.dir, "list")
	if f.m, err = agent.OpenMeasurer(tp, f.list, logPCR); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.m.Close() })
	return f
}

func (f *simFixture) measure(t testing.TB, names ...string) []string {
	t.Helper()
	var paths []string
	for _, n := range names {
		p := filepath.Join(f.dir, n)
		writeFile(t, p, p)
		if err := f.m.MeasureFile(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func (f *simFixture) appraiser(t testing.TB, allowed ...string) *verifier.EvidenceAppraiser {
	t.Helper()
	ak, err := quote.ParseAK(f.ak.Public)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := rtpolicy.Parse(policyFor(allowed...))
	if err != nil {
		t.Fatal(err)
	}
	return &verifier.EvidenceAppraiser{AK: ak, Bank: digest.SHA256, LogPCR: logPCR, BootPCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, Policy: pol}
}

// quoteNow quotes, then lets more run (between quote and list read), then
// reads the list with chunks of at most max bytes.
func (f *simFixture) evidence(t testing.TB, p *verifier.EvidenceAppraiser, nonce []byte, offset int64, between func(), max int) *verifier.Evidence {
	t.Helper()
	q, vals, err := f.tp.ReadQuotedPCRs(f.ak, nonce, tpm.QuoteSelection(p.Selection()))
	if err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	log := agent.NewFileLog(f.list, attest.LogIntact)
	resp := &attest.QuoteResponse{Attest: q.Attest, Signature: q.Signature, PCRs: map[string]map[int][]byte{}}
	for h, v := range vals {
		resp.PCRs[attest.BankName(h)] = v
	}
	if resp.Log, err = log.Read(offset, max); err != nil {
		t.Fatal(err)
	}
	return &verifier.Evidence{Quote: resp, More: func(start int64) (*attest.LogChunk, error) { return log.Read(start, max) }}
}

// A quote that lags the list: only the records it covers are verified,
// the rest wait for the next quote; the list is paged when large.
func TestAppraiseLagAndPaging(t *testing.T) {
	f := newSim(t)
	files := f.measure(t, "a", "b")
	later := []string{filepath.Join(f.dir, "c"), filepath.Join(f.dir, "d")}
	p := f.appraiser(t, append(files, later...)...)
	nonce := bytes.Repeat([]byte{7}, 32)
	ev := f.evidence(t, p, nonce, 0, func() { f.measure(t, "c", "d") }, 200) // ~1 record per chunk
	if ev.Quote.Log.Count == 0 || !ev.Quote.Log.More {
		t.Fatalf("first chunk %+v: want a partial chunk", ev.Quote.Log)
	}
	got, err := p.Appraise(store.Progress{}, ev, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if got.Progress.LogOffset != 4 || got.Verified != 4 || len(got.Findings) != 0 || !got.Progress.BootChecked {
		t.Fatalf("appraisal %+v: want the 4 quoted records verified (boot_aggregate, boot id, a, b)", got)
	}
	// The next quote covers the rest, from the stored offset on.
	nonce2 := bytes.Repeat([]byte{8}, 32)
	ev = f.evidence(t, p, nonce2, got.Progress.LogOffset, nil, attest.MaxLogChunk)
	got2, err := p.Appraise(got.Progress, ev, nonce2)
	if err != nil {
		t.Fatal(err)
	}
	if got2.Progress.LogOffset != 6 || got2.Verified != 2 {
		t.Fatalf("second appraisal %+v", got2)
	}
	// The same nonce again (a replay of the first evidence) fails.
	if _, err := p.Appraise(got2.Progress, ev, nonce); !errors.Is(err, verifier.ErrSecurity) {
		t.Fatalf("replayed evidence: %v", err)
	}
	// Evidence from before the stored progress (an old list position)
	// is a log-offset failure.
	nonce3 := bytes.Repeat([]byte{9}, 32)
	ev = f.evidence(t, p, nonce3, 1, nil, attest.MaxLogChunk)
	ev.More = nil
	_, err = p.Appraise(got2.Progress, ev, nonce3)
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != verifier.ReasonLogOffset {
		t.Fatalf("list from an old offset: %v, want %s", err, verifier.ReasonLogOffset)
	}
}

// A boot_aggregate that does not match the quoted boot PCRs fails.
func TestAppraiseBootAggregate(t *testing.T) {
	f := newSim(t)
	f.measure(t, "a")
	// PCR 0 changes after the boot_aggregate was taken.
	if err := f.tp.ExtendPCRData(0, []byte("late firmware")); err != nil {
		t.Fatal(err)
	}
	p := f.appraiser(t)
	nonce := bytes.Repeat([]byte{1}, 32)
	_, err := p.Appraise(store.Progress{}, f.evidence(t, p, nonce, 0, nil, attest.MaxLogChunk), nonce)
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != verifier.ReasonBootAggregate {
		t.Fatalf("Appraise = %v, want %s", err, verifier.ReasonBootAggregate)
	}
}

// BenchmarkAppraise is the verifier's CPU cost of one attestation: a
// quote verification and the replay and policy check of one new record
// (the steady state of incremental attestation).
func BenchmarkAppraise(b *testing.B) {
	f := newSim(b)
	files := f.measure(b, "a")
	p := f.appraiser(b, append(files, filepath.Join(f.dir, "b"))...)
	nonce := bytes.Repeat([]byte{1}, 32)
	ev := f.evidence(b, p, nonce, 0, nil, attest.MaxLogChunk)
	prog, err := p.Appraise(store.Progress{}, ev, nonce)
	if err != nil {
		b.Fatal(err)
	}
	f.measure(b, "b")
	nonce2 := bytes.Repeat([]byte{2}, 32)
	ev = f.evidence(b, p, nonce2, prog.Progress.LogOffset, nil, attest.MaxLogChunk)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := p.Appraise(prog.Progress, ev, nonce2)
		if err != nil || got.Verified != 1 {
			b.Fatalf("%v %+v", err, got)
		}
	}
}
