// SPDX-License-Identifier: Apache-2.0

package ekcert_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ekcert"
)

// The shipped store (dist/ek-ca, see its README for provenance).
const shipped = "../../dist/ek-ca"

// at is a time when every test certificate is valid.
var at = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func readCert(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".pem") {
		cs, err := ekcert.ParseCertificates(b)
		if err != nil {
			t.Fatal(err)
		}
		return cs[0].Raw
	}
	return b
}

func loadShipped(t *testing.T) *ekcert.Store {
	t.Helper()
	s, err := ekcert.LoadStore(shipped)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Real makers' EK certificates (testdata/README.md) chain to the shipped
// roots.
func TestRealMakersChain(t *testing.T) {
	store := loadShipped(t)
	for _, tc := range []struct {
		file, maker, alg string
		chain            int    // certificates in the verified chain
		top              string // the anchor's common name
		lenient          []string
	}{
		{"stm-rsa-ek.der", "id:53544D20", "RSA", 4, "GlobalSign Trusted Platform Module Root CA", []string{ekcert.LenientTrailingPadding}},
		{"stm-ecc-ek.der", "id:53544D20", "ECDSA", 3, "STM TPM ECC Root CA 01", nil},
		{"nuvoton-rsa-ek.der", "id:4E544300", "RSA", 2, "Nuvoton TPM Root CA 2111", nil},
		{"google-vtpm-ecc-ek.pem", "id:474F4F47", "ECDSA", 3, "tpm_ek_v1_cloud_host_root-signer-0-2018-04-06T10:58:26-07:00 K:1, 1:Pw003HsFYO4:0:18", nil},
		{"google-vtpm-rsa-ek.pem", "id:474F4F47", "RSA", 3, "tpm_ek_v1_cloud_host_root-signer-0-2018-04-06T10:58:26-07:00 K:1, 1:Pw003HsFYO4:0:18", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			der := readCert(t, tc.file)
			c, err := ekcert.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if c.TPM.Manufacturer != tc.maker || c.PublicKeyAlgorithm.String() != tc.alg || !slices.Equal(c.Leniencies, tc.lenient) {
				t.Fatalf("parsed: maker %q alg %s leniencies %v", c.TPM.Manufacturer, c.PublicKeyAlgorithm, c.Leniencies)
			}
			trust := &ekcert.Trust{Store: store}
			r, err := trust.Check(c.PublicKey, der, nil, at)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Chain) != tc.chain || r.Chain[len(r.Chain)-1].Subject.CommonName != tc.top {
				t.Fatalf("chain of %d to %q", len(r.Chain), r.Chain[len(r.Chain)-1].Subject.CommonName)
			}
			// Without the store: refused, naming the issuer.
			_, err = (&ekcert.Trust{}).Check(c.PublicKey, der, nil, at)
			if !errors.Is(err, ekcert.ErrUntrusted) {
				t.Fatalf("no store: %v", err)
			}
			// Long after it expired: refused.
			if _, err := trust.Check(c.PublicKey, der, nil, at.AddDate(200, 0, 0)); !errors.Is(err, ekcert.ErrUntrusted) {
				t.Fatalf("expired: %v", err)
			}
		})
	}
}

// Intermediates the TPM supplies (from its NV indices) build the chain
// when the store has only the root; they are never anchors themselves.
func TestIntermediateFromTPM(t *testing.T) {
	all := loadShipped(t)
	var root, inter *x509.Certificate
	for _, c := range all.Certificates() {
		switch c.Subject.CommonName {
		case "STM TPM ECC Root CA 01":
			root = c
		case "STM TPM ECC Intermediate CA 01":
			inter = c
		}
	}
	if root == nil || inter == nil {
		t.Fatal("shipped store lacks STMicro's ECC root or intermediate")
	}
	der := readCert(t, "stm-ecc-ek.der")
	c, _ := ekcert.Parse(der)
	rootOnly := &ekcert.Trust{Store: ekcert.NewStore(root)}
	if _, err := rootOnly.Check(c.PublicKey, der, nil, at); !errors.Is(err, ekcert.ErrUntrusted) {
		t.Fatalf("without the intermediate: %v", err)
	}
	r, err := rootOnly.Check(c.PublicKey, der, [][]byte{inter.Raw}, at)
	if err != nil || len(r.Chain) != 3 {
		t.Fatalf("with the TPM's intermediate: %v", err)
	}
	// The intermediate alone is not an anchor.
	interOnly := &ekcert.Trust{Store: ekcert.NewStore()}
	if _, err := interOnly.Check(c.PublicKey, der, [][]byte{inter.Raw, root.Raw}, at); !errors.Is(err, ekcert.ErrUntrusted) {
		t.Fatalf("anchors from the TPM: %v", err)
	}
}

// The leniency is exactly trailing padding: other trailing bytes, or a
// truncated certificate, are refused.
func TestLeniencyIsNarrow(t *testing.T) {
	der := readCert(t, "stm-rsa-ek.der")
	bad := slices.Clone(der)
	bad[len(bad)-1] = 0x41
	if _, err := ekcert.Parse(bad); !errors.Is(err, ekcert.ErrMalformed) {
		t.Fatalf("non-padding trailer: %v", err)
	}
	c, _ := ekcert.Parse(der)
	if _, err := ekcert.Parse(der[:len(c.Raw)-1]); !errors.Is(err, ekcert.ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := ekcert.Parse(c.Raw); err != nil {
		t.Fatalf("without the padding: %v", err)
	}
	for i := range 200 { // mangled bytes: errors, never a panic
		m := slices.Clone(der)
		m[(i*37)%len(m)] ^= byte(i + 1)
		ekcert.Parse(m)
	}
}

func TestRefusals(t *testing.T) {
	store := loadShipped(t)
	der := readCert(t, "stm-ecc-ek.der")
	c, _ := ekcert.Parse(der)
	trust := &ekcert.Trust{Store: store}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// The certificate of another TPM's EK.
	if _, err := trust.Check(&other.PublicKey, der, nil, at); !errors.Is(err, ekcert.ErrKeyMismatch) {
		t.Errorf("foreign certificate: %v", err)
	}
	// A software key with no certificate.
	if _, err := trust.Check(&other.PublicKey, nil, nil, at); !errors.Is(err, ekcert.ErrNoCertificate) {
		t.Errorf("no certificate: %v", err)
	}
	// A software key with a certificate it made itself, TPM fields and all.
	self := makeCert(t, &other.PublicKey, other, true, false)
	if _, err := trust.Check(&other.PublicKey, self, nil, at); !errors.Is(err, ekcert.ErrUntrusted) {
		t.Errorf("self-made certificate: %v", err)
	}
	// A forged intermediate with STMicro's name, signing a certificate.
	forgedCA := makeCA(t, other, inter(t, store).Subject)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := makeCertBy(t, &leafKey.PublicKey, forgedCA, other, true)
	if _, err := trust.Check(&leafKey.PublicKey, leaf, [][]byte{forgedCA.Raw}, at); !errors.Is(err, ekcert.ErrUntrusted) {
		t.Errorf("forged intermediate: %v", err)
	}
	// A certificate that is not an EK certificate: no TPM maker; a CA.
	for _, bad := range [][]byte{makeCert(t, &other.PublicKey, other, false, false), makeCert(t, &other.PublicKey, other, true, true)} {
		if _, err := trust.Check(&other.PublicKey, bad, nil, at); !errors.Is(err, ekcert.ErrProfile) {
			t.Errorf("not an ek certificate: %v", err)
		}
	}
	// Allowlisted: trusted without a certificate, and by name.
	h, _ := ekcert.KeyHash(&other.PublicKey)
	allow, err := ekcert.ParseAllowlist([]byte("# lab\n\n" + h + " lab-tpm-1\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := (&ekcert.Trust{Allow: allow}).Check(&other.PublicKey, nil, nil, at)
	if err != nil || r.AllowedAs != "lab-tpm-1" {
		t.Fatalf("allowlisted: %v %+v", err, r)
	}
	// ... but a certificate for another key is still refused.
	if _, err := (&ekcert.Trust{Allow: allow}).Check(&other.PublicKey, der, nil, at); !errors.Is(err, ekcert.ErrKeyMismatch) {
		t.Errorf("allowlisted with a foreign certificate: %v", err)
	}
	// The STM certificate still chains: c is used.
	if _, err := trust.Check(c.PublicKey, der, nil, at); err != nil {
		t.Fatal(err)
	}
}

func TestAllowlistParse(t *testing.T) {
	for _, bad := range []string{
		"sha256:00 x\n",
		"deadbeef x\n",
		"sha256:" + strings.Repeat("A", 64) + " upper\n",
		"sha256:" + strings.Repeat("a", 64) + "\n", // no name
	} {
		if _, err := ekcert.ParseAllowlist([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseAllowlist(%q) = %v", bad, err)
		}
	}
}

func TestLoadStoreErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate"), 0o644)
	_, err := ekcert.LoadStore(dir)
	if err == nil || !strings.Contains(err.Error(), "junk.pem") {
		t.Fatalf("LoadStore(junk) = %v", err)
	}
	if _, err := ekcert.LoadStore(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing directory loaded")
	}
	s := loadShipped(t)
	if s.Len() < 50 {
		t.Fatalf("shipped store has %d certificates", s.Len())
	}
}

func inter(t *testing.T, s *ekcert.Store) *x509.Certificate {
	for _, c := range s.Certificates() {
		if c.Subject.CommonName == "STM TPM ECC Intermediate CA 01" {
			return c
		}
	}
	t.Fatal("no STM intermediate")
	return nil
}

// tpmSAN is a critical subjectAltName with the TCG attributes.
func tpmSAN(t *testing.T) pkix.Extension {
	rdn := pkix.RDNSequence{{
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 1}, Value: "id:53544D20"},
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 2}, Value: "ST33HTPHAHB4"},
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 3}, Value: "id:00490004"},
	}}
	name, err := asn1.Marshal(rdn)
	if err != nil {
		t.Fatal(err)
	}
	v, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: true, Value: v}
}

func makeCert(t *testing.T, pub crypto.PublicKey, signer crypto.Signer, san, isCA bool) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour),
		BasicConstraintsValid: true, IsCA: isCA}
	if san {
		tmpl.ExtraExtensions = []pkix.Extension{tpmSAN(t)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func makeCA(t *testing.T, key *ecdsa.PrivateKey, subject pkix.Name) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: subject, NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func makeCertBy(t *testing.T, pub crypto.PublicKey, ca *x509.Certificate, caKey crypto.Signer, san bool) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), NotBefore: at.Add(-time.Hour), NotAfter: at.Add(time.Hour), BasicConstraintsValid: true}
	if san {
		tmpl.ExtraExtensions = []pkix.Extension{tpmSAN(t)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"stm-rsa-ek.der", "stm-ecc-ek.der", "nuvoton-rsa-ek.der"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ekcert.Parse(b)
		if err == nil && c.Certificate == nil {
			t.Fatal("no certificate and no error")
		}
	})
}
