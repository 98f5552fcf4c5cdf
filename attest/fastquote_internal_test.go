// SPDX-License-Identifier: Apache-2.0

package attest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// sampleQuoteResponse is a quote response as the agent writes it: a
// P-256 quote, 11 sha256 PCRs and a chunk of one record.
func sampleQuoteResponse(tb testing.TB, withLog bool) []byte {
	tb.Helper()
	q := &QuoteResponse{Attest: bytes.Repeat([]byte{0xff}, 145), Signature: bytes.Repeat([]byte{0x18}, 72), PCRs: map[string]map[int][]byte{"sha256": {}}}
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13} {
		q.PCRs["sha256"][i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	if withLog {
		q.Log = &LogChunk{Source: LogIntact, Start: 21, Count: 1, Data: bytes.Repeat([]byte{'r'}, 150)}
	} else {
		q.Log = &LogChunk{Source: LogIntact, Start: 21}
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(q); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// slowQuoteResponse is the reference: encoding/json, strictly.
func slowQuoteResponse(b []byte) (*QuoteResponse, error) {
	q := &QuoteResponse{}
	return q, decodeBytes(b, MaxResponse, "quote response", q)
}

func TestFastQuoteResponse(t *testing.T) {
	for _, withLog := range []bool{false, true} {
		b := sampleQuoteResponse(t, withLog)
		fast, ok := fastQuoteResponse(b)
		if !ok {
			t.Fatalf("fast decoder refused the agent's encoding: %s", b)
		}
		slow, err := slowQuoteResponse(b)
		if err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v, slow %+v (%v)", fast, slow, err)
		}
	}
	// Inputs the fast path leaves to encoding/json (which may accept or
	// refuse them).
	for _, s := range []string{
		`{"Attest":"AQ=="}`, `{"attest":"AQ==","attest":"AQ=="}`, `{"attest":"A\u0051=="}`,
		`{"pcrs":{"sha256":{"01":"AA=="}}}`, `{"log":{"start":1.0}}`, `{"log":null}`, `{"attest":"AQ=="} x`,
		`{"pcrs":{"sha256":{"1":"AA==","1":"AA=="}}}`, `{"log":{"more":tru}}`, `{"attest":"AQ==",}`,
	} {
		if _, ok := fastQuoteResponse([]byte(s)); ok {
			t.Errorf("fast decoder accepted %s", s)
		}
	}
}

// FuzzFastQuoteResponse: whatever the fast decoder accepts, encoding/json
// decodes to the same value; and DecodeQuoteResponse never panics.
func FuzzFastQuoteResponse(f *testing.F) {
	f.Add(sampleQuoteResponse(f, true))
	f.Add(sampleQuoteResponse(f, false))
	f.Add([]byte(`{"attest":"AQ==","signature":"AQ==","pcrs":{"sha1":{"10":"AAAAAAAAAAAAAAAAAAAAAAAAAAA="}},"log":{"source":"ima","start":3,"count":1,"data":"AA==","more":false}}`))
	f.Add([]byte(` { "attest" : null , "pcrs" : { } , "log" : { "start" : -0 , "data" : "" } } `))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := fastQuoteResponse(b)
		if ok {
			slow, err := slowQuoteResponse(b)
			if err != nil {
				t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, b)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast %+v, encoding/json %+v: %q", fast, slow, b)
			}
		}
		decodeQuoteResponse(b)
	})
}

func BenchmarkDecodeQuoteResponse(b *testing.B) {
	for _, c := range []struct {
		name string
		dec  func([]byte) (*QuoteResponse, error)
	}{{"fast", decodeQuoteResponse}, {"json", func(b []byte) (*QuoteResponse, error) {
		q, err := slowQuoteResponse(b)
		if err == nil {
			_, err = ParsePCRValues(q.PCRs)
		}
		return q, err
	}}} {
		b.Run(c.name, func(b *testing.B) {
			in := sampleQuoteResponse(b, true)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.dec(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
