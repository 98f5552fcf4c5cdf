// SPDX-License-Identifier: Apache-2.0

package ear_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/intactsec/intact/attest/ear"
)

func key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sample() *ear.Result {
	return &ear.Result{Profile: ear.Profile, IssuedAt: 1700000000,
		VerifierID: ear.VerifierID{Developer: "https://github.com/intactsec/intact", Build: "intact-verifier test"},
		Submods: map[string]ear.Appraisal{"web1": {
			Status: ear.StatusContraindicated,
			Vector: &ear.TrustVector{InstanceIdentity: ear.IdentityTrustworthy, Executables: ear.ExecUnrecognized},
			State:  "failed", Kind: "security", Reason: "policy",
			Reasons: []string{"policy: /tmp/evil: not-in-policy (record 3, sha256:00)"}, Paths: []string{"/tmp/evil"},
		}}}
}

func TestSignVerify(t *testing.T) {
	k := key(t)
	tok, err := ear.Sign(sample(), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ear.Verify(tok, &k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sample()) {
		t.Fatalf("Verify = %+v\nwant %+v", got, sample())
	}
	// The claims are the EAR names.
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sub := m["submods"].(map[string]any)["web1"].(map[string]any)
	if m["eat_profile"] != ear.Profile || m["iat"] != float64(1700000000) || sub["ear.status"] != "contraindicated" ||
		sub["ear.trustworthiness-vector"].(map[string]any)["executables"] != float64(33) {
		t.Fatalf("claims = %s", raw)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	kid, _ := ear.Thumbprint(&k.PublicKey)
	if want := `{"alg":"ES256","typ":"JWT","kid":"` + kid + `"}`; string(hdr) != want {
		t.Fatalf("header %s, want %s", hdr, want)
	}
	if _, err := ear.Verify(tok, &key(t).PublicKey); !errors.Is(err, ear.ErrSignature) {
		t.Fatalf("another key: %v", err)
	}
	if u, err := ear.ParseUnverified(tok); err != nil || u.Submods["web1"].Reason != "policy" {
		t.Fatalf("ParseUnverified = %+v, %v", u, err)
	}
}

func encode(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }

func TestVerifyRejects(t *testing.T) {
	k := key(t)
	tok, err := ear.Sign(sample(), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(claims), "contraindicated", "affirming", 1)
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"claims changed":   {parts[0] + "." + encode(forged) + "." + parts[2], ear.ErrSignature},
		"alg none":         {encode(`{"alg":"none"}`) + "." + parts[1] + ".", ear.ErrAlgorithm},
		"alg HS256":        {encode(`{"alg":"HS256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2], ear.ErrAlgorithm},
		"crit header":      {encode(`{"alg":"ES256","crit":["x"]}`) + "." + parts[1] + "." + parts[2], ear.ErrMalformed},
		"two parts":        {parts[0] + "." + parts[1], ear.ErrMalformed},
		"four parts":       {tok + ".x", ear.ErrMalformed},
		"padded":           {parts[0] + "." + parts[1] + "." + parts[2] + "==", ear.ErrMalformed},
		"std base64":       {parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+", ear.ErrMalformed},
		"short signature":  {parts[0] + "." + parts[1] + "." + encode("abc"), ear.ErrSignature},
		"empty signature":  {parts[0] + "." + parts[1] + ".", ear.ErrSignature},
		"huge":             {strings.Repeat("a", ear.MaxToken+1), ear.ErrMalformed},
		"header not json":  {encode("{") + "." + parts[1] + "." + parts[2], ear.ErrMalformed},
		"header trailing":  {encode(`{"alg":"ES256"}{}`) + "." + parts[1] + "." + parts[2], ear.ErrMalformed},
		"typ not jwt":      {encode(`{"alg":"ES256","typ":"x"}`) + "." + parts[1] + "." + parts[2], ear.ErrMalformed},
		"invalid base64 h": {"!!." + parts[1] + "." + parts[2], ear.ErrMalformed},
	} {
		if _, err := ear.Verify(tc.tok, &k.PublicKey); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
}

// Claims that are signed but not a valid EAR are refused.
func TestVerifyClaims(t *testing.T) {
	k := key(t)
	for name, mut := range map[string]func(r *ear.Result){
		"profile":     func(r *ear.Result) { r.Profile = "x" },
		"iat":         func(r *ear.Result) { r.IssuedAt = 0 },
		"verifier":    func(r *ear.Result) { r.VerifierID.Build = "" },
		"submods":     func(r *ear.Result) { r.Submods = nil },
		"status":      func(r *ear.Result) { r.Submods["web1"] = ear.Appraisal{Status: "great"} },
		"submod id":   func(r *ear.Result) { r.Submods[""] = ear.Appraisal{Status: ear.StatusNone} },
		"short nonce": func(r *ear.Result) { r.Nonce = "abc" },
		"long nonce":  func(r *ear.Result) { r.Nonce = strings.Repeat("a", 65) },
	} {
		r := sample()
		mut(r)
		if _, err := ear.Sign(r, k, nil); !errors.Is(err, ear.ErrClaims) {
			t.Errorf("%s: Sign = %v, want ErrClaims", name, err)
		}
	}
	// Signed by hand, bypassing Sign's checks.
	tok, err := ear.Sign(sample(), k, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	bad := parts[0] + "." + encode(`{"eat_profile":"x"}`) + "." + parts[2]
	if _, err := ear.ParseUnverified(bad); !errors.Is(err, ear.ErrClaims) {
		t.Errorf("ParseUnverified(bad claims) = %v", err)
	}
	if _, err := ear.Verify(tok, nil); !errors.Is(err, ear.ErrKey) {
		t.Errorf("Verify(nil key) = %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := ear.Sign(sample(), p384, nil); !errors.Is(err, ear.ErrKey) {
		t.Errorf("Sign(P-384) = %v", err)
	}
}

func TestTiers(t *testing.T) {
	for v, want := range map[int8]ear.Status{0: ear.StatusNone, 1: ear.StatusNone, -1: ear.StatusNone, 2: ear.StatusAffirming,
		31: ear.StatusAffirming, 32: ear.StatusWarning, 95: ear.StatusWarning, 96: ear.StatusContraindicated,
		99: ear.StatusContraindicated, 127: ear.StatusContraindicated, -128: ear.StatusContraindicated, -33: ear.StatusWarning} {
		if got := ear.TierOf(v); got != want {
			t.Errorf("TierOf(%d) = %s, want %s", v, got, want)
		}
	}
	v := &ear.TrustVector{InstanceIdentity: 2, Executables: 33}
	if v.Worst() != ear.StatusWarning {
		t.Errorf("Worst = %s", v.Worst())
	}
	v.Configuration = 99
	if v.Worst() != ear.StatusContraindicated {
		t.Errorf("Worst = %s", v.Worst())
	}
	if (*ear.TrustVector)(nil).Worst() != ear.StatusNone || (&ear.TrustVector{}).Worst() != ear.StatusNone {
		t.Error("empty vector not none")
	}
	if ear.Worse(ear.StatusAffirming, ear.StatusNone) != ear.StatusAffirming || ear.Worse(ear.StatusWarning, ear.StatusContraindicated) != ear.StatusContraindicated {
		t.Error("Worse")
	}
}

func TestJWK(t *testing.T) {
	k := key(t)
	j, err := ear.PublicJWK(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j)
	pub, err := ear.ParseJWK(b)
	if err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatalf("ParseJWK = %v, %v", pub, err)
	}
	tok, _ := ear.Sign(sample(), k, nil)
	if _, err := ear.Verify(tok, pub); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{}`, `{"kty":"EC","crv":"P-384","x":"","y":""}`, `{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}`, `[`,
		`{"kty":"EC","crv":"P-256","x":"` + j.X + `","y":"` + j.X + `"}`} {
		if _, err := ear.ParseJWK([]byte(bad)); !errors.Is(err, ear.ErrKey) {
			t.Errorf("ParseJWK(%s) = %v", bad, err)
		}
	}
}
