// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store/sqlite"
)

func TestAPIAuth(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, _ := verifier.New(verifier.Options{Store: st})
	if _, err := verifier.NewAPI(v, "short"); err == nil {
		t.Fatal("short token accepted")
	}
	h, err := verifier.NewAPI(v, "0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/v1/agents", "", "", 401},
		{"GET", "/v1/agents", "Bearer wrong-token-wrong-token", "", 401},
		{"POST", "/v1/agents", "", `{"id":"a","addr":"x:1","policy":"p"}`, 401},
		{"PUT", "/v1/policies/p", "", `{"intact_runtime_policy":1,"digests":{}}`, 401},
		{"DELETE", "/v1/agents/a", "", "", 401},
		{"GET", "/v1/agents", "Bearer 0123456789abcdef0123", "", 200},
		{"PUT", "/v1/policies/p", "Bearer 0123456789abcdef0123", `{"intact_runtime_policy":1,"digests":{}}`, 200},
		{"PUT", "/v1/policies/p", "Bearer 0123456789abcdef0123", `{"intact_runtime_policy":7}`, 400},
		{"POST", "/v1/agents", "Bearer 0123456789abcdef0123", `{"id":"a b","addr":"x:1","policy":"p"}`, 400},
		{"POST", "/v1/agents", "Bearer 0123456789abcdef0123", `{"id":"a","addr":"x:1","policy":"p","extra":1}`, 400},
		{"POST", "/v1/agents", "Bearer 0123456789abcdef0123", `{"id":"a","addr":"x:1","policy":"p","cert":"junk"}`, 400},
		{"POST", "/v1/agents", "Bearer 0123456789abcdef0123", `{"id":"a","addr":"x:1","policy":"nope"}`, 404},
		{"POST", "/v1/agents", "Bearer 0123456789abcdef0123", `{"id":"a","addr":"` + strings.Repeat("x", 70000) + `","policy":"p"}`, 400},
		{"GET", "/v1/agents/none", "Bearer 0123456789abcdef0123", "", 404},
		{"GET", "/v1/agents/none/ear", "Bearer 0123456789abcdef0123", "", 404},
		{"GET", "/v1/agents/none/ear", "", "", 401},
		{"GET", "/v1/ear-key", "", "", 401},
		{"GET", "/v1/ear-key", "Bearer 0123456789abcdef0123", "", 200},
	} {
		req := httptest.NewRequestWithContext(context.Background(), tc.method, tc.path, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s (auth %q): %d %s, want %d", tc.method, tc.path, tc.auth, rec.Code, rec.Body, tc.want)
		}
	}
	_ = http.StatusOK
}

func FuzzDecodeAddAgent(f *testing.F) {
	f.Add([]byte(`{"id":"a","addr":"127.0.0.1:1","policy":"p"}`))
	f.Add([]byte(`{"id":"a","addr":"127.0.0.1:1","policy":"p","cert":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}`))
	f.Fuzz(func(t *testing.T, b []byte) { verifier.DecodeAddAgent(bytes.NewReader(b)) })
}

// The agent id grammar (verifier.CheckID): "." and ".." and anything
// that is not a plain name are refused, at the API and in Enroll.
func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "web-1.example_2", "0", "A.b..c", strings.Repeat("x", verifier.MaxIDLen)} {
		if err := verifier.CheckID(id); err != nil {
			t.Errorf("CheckID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", ".hidden", "-rf", "_x", "a/b", "a\\b", "a b", "a\nb", "a\x00", "é", "a:1", "a%2e", strings.Repeat("x", verifier.MaxIDLen+1)} {
		if err := verifier.CheckID(id); err == nil {
			t.Errorf("CheckID(%q) accepted", id)
		}
		if _, _, err := verifier.DecodeAddAgent(strings.NewReader(`{"id":` + strconv.Quote(id) + `,"addr":"x:1","policy":"p"}`)); err == nil {
			t.Errorf("DecodeAddAgent with id %q accepted", id)
		}
	}
}

// An add-agent request is one JSON object and nothing after it: a stray
// "}" or anything past the value is refused (json.Decoder.More let
// `{...}}` and `{...} }x` through).
func TestDecodeAddAgentTrailing(t *testing.T) {
	const ok = `{"id":"a","addr":"x:1","policy":"p"}`
	if _, _, err := verifier.DecodeAddAgent(strings.NewReader(ok + " \n")); err != nil {
		t.Fatalf("DecodeAddAgent(%q): %v", ok, err)
	}
	for _, tail := range []string{"}", " }x", "]", "{}", "x"} {
		if _, _, err := verifier.DecodeAddAgent(strings.NewReader(ok + tail)); err == nil {
			t.Errorf("DecodeAddAgent with trailing %q accepted", tail)
		}
	}
}
