// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/store/sqlite"
)

// With policy signers configured, the verifier takes only policies signed
// by them, when put and when read back from the store; without, it
// refuses a signed policy rather than use it unchecked.
func TestSignedPolicies(t *testing.T) {
	key, _ := sig.GenerateKey("ec-p256")
	der, _ := sig.CreateCertificate(key, "policy signer", time.Hour)
	cert, _ := x509.ParseCertificate(der)
	other, _ := sig.GenerateKey("ec-p256")
	p := rtpolicy.Policy{Format: 1, Name: "web", Digests: map[string][]string{"/usr/bin/a": {sum("/usr/bin/a")}}}
	signed, err := rtpolicy.Sign(p, key)
	if err != nil {
		t.Fatal(err)
	}
	byOther, _ := rtpolicy.Sign(p, other)
	plain, _ := json.Marshal(p)
	tampered := []byte(strings.Replace(string(signed), `"/usr/bin/a"`, `"/usr/bin/b"`, 1))

	db := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, _ := verifier.New(verifier.Options{Store: st, PolicySigners: sig.NewKeyring(cert)})
	ctx := context.Background()
	if _, err := v.PutPolicy(ctx, "web", signed); err != nil {
		t.Fatalf("signed policy: %v", err)
	}
	for _, tc := range []struct {
		name string
		doc  []byte
		want error
	}{
		{"unsigned", plain, rtpolicy.ErrUnsigned},
		{"other signer", byOther, rtpolicy.ErrUnknownSigner},
		{"tampered", tampered, rtpolicy.ErrBadPolicySig},
	} {
		if _, err := v.PutPolicy(ctx, "x", tc.doc); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	h, _ := verifier.NewAPI(v, "0123456789abcdef0123")
	req := httptest.NewRequest("PUT", "/v1/policies/x", strings.NewReader(string(tampered)))
	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "signature does not verify") {
		t.Errorf("API, tampered policy: %d %s", rec.Code, rec.Body)
	}

	// A verifier without signers refuses the signed policy, clearly.
	v2, _ := verifier.New(verifier.Options{Store: st})
	if _, err := v2.PutPolicy(ctx, "y", signed); !errors.Is(err, rtpolicy.ErrFormat) || !strings.Contains(err.Error(), "policy-cert") {
		t.Errorf("signed policy, no signers: %v", err)
	}
	// A verifier with other signers refuses the stored one when it loads
	// it (enrollment reads the policy first).
	otherDER, _ := sig.CreateCertificate(other, "other", time.Hour)
	otherCert, _ := x509.ParseCertificate(otherDER)
	v3, _ := verifier.New(verifier.Options{Store: st, PolicySigners: sig.NewKeyring(otherCert)})
	_, err = v3.Enroll(ctx, verifier.EnrollRequest{ID: "a", Addr: "127.0.0.1:1", Policy: "web"})
	if !errors.Is(err, rtpolicy.ErrUnknownSigner) {
		t.Errorf("stored policy, other signers: %v", err)
	}
}
