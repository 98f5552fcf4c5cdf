// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bytes"
	"testing"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store"
)

// FuzzAppraiseList feeds arbitrary list bytes, with a genuine quote,
// through the appraisal: it must fail cleanly, never panic, and never
// verify records the quote does not cover.
func FuzzAppraiseList(f *testing.F) {
	fx := newSim(f)
	fx.measure(f, "a", "b")
	p := fx.appraiser(f)
	nonce := bytes.Repeat([]byte{5}, 32)
	ev := fx.evidence(f, p, nonce, 0, nil, attest.MaxLogChunk)
	good := ev.Quote.Log.Data
	f.Add(good, int64(4), int64(0))
	f.Add(good[:len(good)-1], int64(4), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, count, start int64) {
		q := *ev.Quote
		q.Log = &attest.LogChunk{Source: attest.LogIntact, Start: start, Count: count, Data: data}
		e := &attest.LogChunk{Source: attest.LogIntact}
		app, err := p.Appraise(store.Progress{}, &verifier.Evidence{Quote: &q, More: func(int64) (*attest.LogChunk, error) { return e, nil }}, nonce)
		// Only the genuine records replay to the quoted PCR.
		if err == nil && (app.Verified != 4 || !bytes.HasPrefix(data, good)) {
			t.Fatalf("verified %d records of a list that is not the genuine one", app.Verified)
		}
	})
}
