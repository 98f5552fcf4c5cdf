// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/digest"
)

// BenchmarkClientQuote is the verifier's client side of one attestation
// over a keep-alive TLS connection: the request, the response and its
// decoding (what Appraise gets), against an agent that answers a
// canned quote response of the usual size (11 PCRs, one new record).
// The server's CPU is in the numbers too.
func BenchmarkClientQuote(b *testing.B) {
	q := &attest.QuoteResponse{Attest: bytes.Repeat([]byte{0xff}, 145), Signature: bytes.Repeat([]byte{0x18}, 72), PCRs: map[string]map[int][]byte{"sha256": {}}}
	for _, i := range append(append([]int(nil), bootPCRs...), 13) {
		q.PCRs["sha256"][i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	q.Log = &attest.LogChunk{Source: attest.LogIntact, Start: 21, Count: 1, Data: bytes.Repeat([]byte{'r'}, 150)}
	body, err := json.Marshal(q)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != attest.PathQuote || len(r.URL.Query().Get("nonce")) != 2*attest.NonceSize || r.URL.Query().Get("pcrs") != "sha256:0,1,2,3,4,5,6,7,8,9,13" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	srv.EnableHTTP2 = false
	srv.StartTLS()
	defer srv.Close()
	c := newAgentClient(strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw, nil, nil, 10*time.Second)
	defer c.close()
	sel := quoteSelQuery(attest.Selection{digest.SHA256: append(append([]int(nil), bootPCRs...), 13)})
	nonce := bytes.Repeat([]byte{1}, attest.NonceSize)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.quote(ctx, nonce, sel, 21)
		if err != nil || got.Log.Count != 1 {
			b.Fatal(err)
		}
	}
}
