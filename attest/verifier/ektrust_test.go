// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/bench/fleet/sim"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/store"
)

// shippedCAs is the makers' CA store shipped in the repository.
const shippedCAs = "../../dist/ek-ca"

func wantEKRefusal(t *testing.T, err error, want ...string) {
	t.Helper()
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != verifier.ReasonEKUntrusted {
		t.Fatalf("Enroll = %v, want a %s refusal", err, verifier.ReasonEKUntrusted)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("refusal %q does not say %q", err, w)
		}
	}
	t.Logf("refused: %v", err)
}

// A swtpm manufactured with EK certificates from a local CA
// (swtpm_setup --create-ek-cert, swtpm_localca): trusted with that CA in
// the store; refused without it, naming the reason and the issuer.
func TestEnrollEKLocalCA(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{EKCert: true})
	a := newTestAgent(t, sw)
	ctx := context.Background()

	// The makers' store only: the local CA is unknown.
	tv := startVerifierWith(t, "", func(o *verifier.Options) {
		o.EKTrust = verifier.EKTrustFiles([]string{shippedCAs}, nil)
	})
	tv.v.PutPolicy(ctx, "p", policyFor())
	_, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "h", Addr: a.addr(), Policy: "p"})
	wantEKRefusal(t, err, "does not chain", "swtpm-localca", "id:00001014")
	if _, err := tv.st.GetAgent(ctx, "h"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused agent stored: %v", err)
	}
	tv.stop()

	// The local CA added to the store: enrolled and attested.
	tv = startVerifierWith(t, "", func(o *verifier.Options) {
		o.EKTrust = verifier.EKTrustFiles([]string{shippedCAs, sw.EKCA}, nil)
	})
	tv.v.PutPolicy(ctx, "p", policyFor())
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "h", Addr: a.addr(), Policy: "p"}); err != nil {
		t.Fatalf("Enroll with the local CA in the store: %v", err)
	}
	tv.wait("h", 20*time.Second, "trusted", state(store.StateTrusted))
}

// An agent whose "TPM" is a key in process memory (bench/fleet/sim's
// software TPM) is refused: it has no EK certificate; a certificate it
// makes for its key with TPM-looking fields does not chain.
func TestEnrollSoftwareKeyRefused(t *testing.T) {
	f := sim.New(sim.Options{})
	defer f.Close()
	ags, err := f.Add("soft", 1)
	if err != nil {
		t.Fatal(err)
	}
	sa := ags[0]
	ctx := context.Background()
	tv := startVerifierWith(t, "", func(o *verifier.Options) {
		o.EKTrust = verifier.EKTrustFiles([]string{shippedCAs}, nil)
	})
	tv.v.PutPolicy(ctx, "p", sim.Policy("p"))
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "soft", Addr: sa.Addr, Policy: "p", CertDER: sa.CertDER()})
	wantEKRefusal(t, err, "no ek certificate", "not in the allowlist")

	// The same agent behind a proxy that adds a certificate it made.
	ek, _ := sa.TPM.EndorsementKey()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	ekKey, _ := tpm2.Pub(*pub)
	certDER := fakeEKCert(t, ekKey)
	proxy := newEnrollmentRewriter(t, sa, func(e *attest.Enrollment) { e.EKCert = certDER })
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "soft2", Addr: proxy, Policy: "p"})
	wantEKRefusal(t, err, "does not chain", "Fake TPM CA")
}

// An allowlisted EK (no certificate: a plain swtpm) is enrolled; the
// allowlist file is read at each enrollment, so an entry added while the
// verifier runs applies.
func TestEnrollAllowlistedEK(t *testing.T) {
	a := newTestAgent(t, nil)
	allow := filepath.Join(t.TempDir(), "ek-allow")
	writeFile(t, allow, "# lab machines\n")
	ctx := context.Background()
	tv := startVerifierWith(t, "", func(o *verifier.Options) {
		o.EKTrust = verifier.EKTrustFiles([]string{shippedCAs}, []string{allow})
	})
	tv.v.PutPolicy(ctx, "p", policyFor())
	h := a.sw.EKHash(t)
	_, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "lab", Addr: a.addr(), Policy: "p"})
	wantEKRefusal(t, err, "no ek certificate", h)

	writeFile(t, allow, "# lab machines\n"+h+" lab-swtpm-1\n")
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "lab", Addr: a.addr(), Policy: "p"}); err != nil {
		t.Fatalf("allowlisted: %v", err)
	}
	tv.wait("lab", 20*time.Second, "trusted", state(store.StateTrusted))

	// A broken allowlist is the operator's error, not an accept-all.
	writeFile(t, allow, "sha256:xyz broken\n")
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "lab2", Addr: a.addr(), Policy: "p"})
	if err == nil || !strings.Contains(err.Error(), "ek-allow") {
		t.Fatalf("Enroll with a broken allowlist = %v", err)
	}
	// No EK trust configured at all: refused.
	tv.stop()
	tv = startVerifierWith(t, "", func(o *verifier.Options) { o.EKTrust = nil })
	tv.v.PutPolicy(ctx, "p", policyFor())
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "lab", Addr: a.addr(), Policy: "p"})
	wantEKRefusal(t, err, "no ek ca store or allowlist")
}

// fakeEKCert is a certificate for key with the TCG EK fields, from a CA
// that no maker's store has.
func fakeEKCert(t *testing.T, key any) []byte {
	t.Helper()
	ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fake TPM CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &ca.PublicKey, ca)
	caCert, _ := x509.ParseCertificate(caDER)
	name, _ := asn1.Marshal(pkix.RDNSequence{{
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 1}, Value: "id:53544D20"},
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 2}, Value: "ST33HTPHAHB4"},
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 3}, Value: "id:00490004"},
	}})
	san, _ := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}})
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: true, Value: san}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// newEnrollmentRewriter is a TLS proxy (a certificate of its own) to
// the sim agent, rewriting the enrollment data with f; it returns its
// address. The EK is checked before the activation proof, so the proxy's
// certificate does not matter to the refusals tested.
func newEnrollmentRewriter(t *testing.T, sa *sim.Agent, f func(*attest.Enrollment)) string {
	t.Helper()
	// It presents the verifier's certificate upstream (the sim agent,
	// like intact's, answers only a client with a certificate).
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		Certificates: []tls.Certificate{*verifierCert(t)}}}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rsp, err := client.Get("https://" + sa.Addr + r.URL.RequestURI())
		if err != nil {
			w.WriteHeader(502)
			return
		}
		defer rsp.Body.Close()
		b, _ := io.ReadAll(rsp.Body)
		if r.URL.Path == attest.PathEnrollment {
			var e attest.Enrollment
			if json.Unmarshal(b, &e) != nil {
				w.WriteHeader(502)
				return
			}
			f(&e)
			b, _ = json.Marshal(&e)
		}
		w.WriteHeader(rsp.StatusCode)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(client.CloseIdleConnections)
	return strings.TrimPrefix(srv.URL, "https://")
}
