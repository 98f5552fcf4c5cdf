// SPDX-License-Identifier: Apache-2.0

package mlog_test

import (
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

// TestReplayAgainstQuote: records appended and extended on a (simulated)
// TPM are verified against the PCR values of a verified quote, and records
// appended after the quote are left out (the quote lags the list).
func TestReplayAgainstQuote(t *testing.T) {
	tp, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	path := filepath.Join(t.TempDir(), "list")
	a, err := mlog.OpenMeasurer(path, tp, mlog.MeasureOptions{Boot: []byte("boot-1")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	appendN := func(n int) {
		for i := range n {
			d := make([]byte, 32)
			d[0] = byte(i)
			if _, err := a.Append(mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: d, Path: "/f"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(3)

	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	nonce := []byte("a fresh nonce of the verifier")
	q, pcrs, err := tp.ReadQuotedPCRs(ak, nonce, tpm.QuoteSelection{digest.SHA256: {mlog.DefaultPCR}})
	if err != nil {
		t.Fatal(err)
	}
	appendN(2) // after the quote

	akPub, err := quote.ParseAK(ak.Public)
	if err != nil {
		t.Fatal(err)
	}
	v, err := quote.Verify(akPub, q.Attest, q.Signature, nonce, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	l, err := mlog.ReadFile(path, mlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Replay(v.PCRs)
	if err != nil {
		t.Fatal(err)
	}
	// The boot_aggregate, the boot record and 3 records were quoted; 2
	// came later.
	if got.Prefix != 5 || len(got.Records) != 5 || l.Len() != 7 {
		t.Errorf("verified prefix %d (%d records) of %d, want 5 of 7", got.Prefix, len(got.Records), l.Len())
	}
}
