// SPDX-License-Identifier: Apache-2.0

package attest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/digest"
)

func TestSelectionRoundTrip(t *testing.T) {
	s := attest.Selection{digest.SHA256: {0, 1, 9, 13}, digest.SHA1: {10}}
	got, err := attest.ParseSelection(s.String())
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("ParseSelection(%q) = %v, %v", s.String(), got, err)
	}
	for _, bad := range []string{"", "sha256", "sha256:", "md5:1", "sha256:24", "sha256:1,1", "sha256:01", "sha256:1+sha256:2", "sha256:-1"} {
		if _, err := attest.ParseSelection(bad); !errors.Is(err, attest.ErrMessage) {
			t.Errorf("ParseSelection(%q) = %v", bad, err)
		}
	}
}

func TestParseNonce(t *testing.T) {
	if b, err := attest.ParseNonce("00112233445566778899"); err != nil || len(b) != 10 {
		t.Fatalf("ParseNonce = %x, %v", b, err)
	}
	for _, bad := range []string{"", "0011", "001122334455667g", "00112233445566778", strings.Repeat("00", 65)} {
		if _, err := attest.ParseNonce(bad); err == nil {
			t.Errorf("ParseNonce(%q) accepted", bad)
		}
	}
}

func TestDecodeLimits(t *testing.T) {
	big := `{"ek_public":"` + strings.Repeat("A", attest.MaxEnrollment) + `"}`
	if _, err := attest.DecodeEnrollment(strings.NewReader(big)); !errors.Is(err, attest.ErrMessage) {
		t.Fatalf("oversized enrollment: %v", err)
	}
	good := attest.Enrollment{EKPublic: []byte{1}, AKPublic: []byte{2}, AKName: []byte{3}, Log: attest.LogIntact, LogPCR: 13}
	b, _ := json.Marshal(good)
	if e, err := attest.DecodeEnrollment(bytes.NewReader(b)); err != nil || !reflect.DeepEqual(*e, good) {
		t.Fatalf("DecodeEnrollment = %v, %v", e, err)
	}
	for _, bad := range []string{
		`{"ek_public":"AQ==","ak_public":"Ag==","ak_name":"Aw==","log":"other","log_pcr":13}`,
		`{"ek_public":"AQ==","ak_public":"Ag==","ak_name":"Aw==","log":"ima","log_pcr":24}`,
		`{"ek_public":"AQ==","ak_public":"Ag==","ak_name":"Aw==","log":"ima","log_pcr":10,"x":1}`,
		`{"ek_public":"AQ==","ak_public":"Ag==","ak_name":"Aw==","log":"ima","log_pcr":10}{}`,
	} {
		if _, err := attest.DecodeEnrollment(strings.NewReader(bad)); !errors.Is(err, attest.ErrMessage) {
			t.Errorf("DecodeEnrollment(%s) = %v", bad, err)
		}
	}
	q := `{"attest":"AQ==","signature":"AQ==","pcrs":{"sha256":{"10":"AAAA"}}}`
	if _, err := attest.DecodeQuoteResponse(strings.NewReader(q)); !errors.Is(err, attest.ErrMessage) {
		t.Errorf("short pcr value accepted: %v", err)
	}
}

func TestActivationProof(t *testing.T) {
	a := attest.ActivationProof([]byte("secret"), []byte("cert1"))
	if bytes.Equal(a, attest.ActivationProof([]byte("secret"), []byte("cert2"))) ||
		bytes.Equal(a, attest.ActivationProof([]byte("secreT"), []byte("cert1"))) {
		t.Fatal("proof does not depend on its inputs")
	}
}

func FuzzDecodeEnrollment(f *testing.F) {
	f.Add([]byte(`{"ek_public":"AQ==","ak_public":"Ag==","ak_name":"Aw==","log":"ima","log_pcr":10}`))
	f.Fuzz(func(t *testing.T, b []byte) { attest.DecodeEnrollment(bytes.NewReader(b)) })
}

func FuzzDecodeQuoteResponse(f *testing.F) {
	f.Add([]byte(`{"attest":"AQ==","signature":"AQ==","pcrs":{"sha1":{"10":"AAAAAAAAAAAAAAAAAAAAAAAAAAA="}},"log":{"source":"ima","start":3,"count":1,"data":"AA==","more":false}}`))
	f.Fuzz(func(t *testing.T, b []byte) { attest.DecodeQuoteResponse(bytes.NewReader(b)) })
}

func FuzzDecodeLogChunk(f *testing.F) {
	f.Add([]byte(`{"source":"intact","start":0,"count":0,"data":null,"more":true}`))
	f.Fuzz(func(t *testing.T, b []byte) { attest.DecodeLogChunk(bytes.NewReader(b)) })
}

func FuzzDecodeActivate(f *testing.F) {
	f.Add([]byte(`{"proof":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"credential":"AQ==","secret":"AQ=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		attest.DecodeActivateResponse(bytes.NewReader(b))
		attest.DecodeActivateRequest(bytes.NewReader(b))
	})
}

func FuzzParseQuery(f *testing.F) {
	f.Add("sha256:0,1,2+sha1:10", "00112233445566778899", "12")
	f.Fuzz(func(t *testing.T, sel, nonce, off string) {
		if s, err := attest.ParseSelection(sel); err == nil {
			if _, err := attest.ParseSelection(s.String()); err != nil {
				t.Fatalf("re-parse %q: %v", s.String(), err)
			}
		}
		attest.ParseNonce(nonce)
		attest.ParseOffset(off)
	})
}
