// SPDX-License-Identifier: Apache-2.0

// Package ekcert decides whether a TPM's endorsement key (EK) is trusted:
// its certificate chains to a TPM maker's CA in a store the operator
// controls, or the operator names the key itself in an allowlist.
//
// EK certificates are made by TPM makers at manufacture and are stored
// in the TPM's NV memory; real ones break naive parsers. This package is
// strict (Go's crypto/x509 chain building, validity periods, CA
// constraints, the TCG EK profile's fields) and tolerates exactly these
// deviations, each needed by a real certificate in testdata/:
//
//   - Trailing NV padding (LenientTrailingPadding): the certificate's
//     DER is followed by 0xff or 0x00 bytes up to the NV index's size.
//     Seen on an STMicroelectronics ST33HTPH RSA EK certificate
//     (testdata/stm-rsa-ek.der: 431 bytes of 0xff). Any other trailing
//     byte is refused.
//
// Not deviations, but handled here because Go's x509 does not: the TCG
// EK profile puts the TPM's maker, model and firmware version in a
// critical subjectAltName holding only a directoryName (the subject is
// empty); crypto/x509 leaves such a SAN as an unhandled critical
// extension. This package parses it (package-level [TPMInfo]) and
// requires the maker attribute. Nuvoton's certificates encode a SET in
// non-DER order (testdata/nuvoton-rsa-ek.der, and its root CA 2110):
// strict DER parsers such as python-cryptography refuse them; Go's parser
// accepts them and their signatures verify over the bytes as signed.
package ekcert

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	derframe "github.com/intactsec/intact/internal/der"
)

// Errors, matched with errors.Is.
var (
	// ErrNoCertificate: the TPM has no EK certificate and the key is not
	// allowlisted.
	ErrNoCertificate = errors.New("no ek certificate")
	// ErrMalformed: the certificate does not parse, even with the
	// tolerated deviations.
	ErrMalformed = errors.New("malformed ek certificate")
	// ErrKeyMismatch: the certificate is for another key than the EK.
	ErrKeyMismatch = errors.New("ek certificate is for another key")
	// ErrProfile: the certificate is not a TPM EK certificate (no TPM
	// maker in its subjectAltName, a CA certificate, a foreign extended
	// key usage).
	ErrProfile = errors.New("not a tpm ek certificate")
	// ErrUntrusted: the certificate does not chain to a CA in the store.
	ErrUntrusted = errors.New("ek certificate does not chain to a trusted tpm maker ca")
)

// Leniencies reported in [Cert.Leniencies].
const (
	LenientTrailingPadding = "trailing-nv-padding"
)

// OIDs of the TCG EK Credential Profile.
var (
	oidSAN             = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidTPMManufacturer = asn1.ObjectIdentifier{2, 23, 133, 2, 1}
	oidTPMModel        = asn1.ObjectIdentifier{2, 23, 133, 2, 2}
	oidTPMVersion      = asn1.ObjectIdentifier{2, 23, 133, 2, 3}
	oidEKCertificate   = asn1.ObjectIdentifier{2, 23, 133, 8, 1}
)

// TPMInfo is what an EK certificate's subjectAltName says of the TPM.
type TPMInfo struct {
	Manufacturer string // "id:53544D20" (TCG vendor id)
	Model        string
	Version      string
}

// Cert is a parsed EK certificate.
type Cert struct {
	*x509.Certificate
	TPM TPMInfo
	// Leniencies lists the tolerated deviations this certificate needed.
	Leniencies []string
}

// Parse parses an EK certificate as read from the TPM's NV index,
// tolerating only the deviations of the package documentation.
func Parse(der []byte) (*Cert, error) {
	c := &Cert{}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		n, ok := derframe.SeqLen(der)
		if !ok || n >= len(der) || !padding(der[n:]) {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		if cert, err = x509.ParseCertificate(der[:n]); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		c.Leniencies = append(c.Leniencies, LenientTrailingPadding)
	}
	c.Certificate = cert
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidSAN) {
			continue
		}
		info, ok, err := parseTPMSAN(e.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: subjectAltName: %v", ErrMalformed, err)
		}
		if ok {
			c.TPM = info
			// Parsed here: no longer an unhandled critical extension.
			cert.UnhandledCriticalExtensions = removeOID(cert.UnhandledCriticalExtensions, oidSAN)
		}
	}
	return c, nil
}

func padding(b []byte) bool {
	for _, x := range b {
		if x != b[0] || (x != 0xff && x != 0x00) {
			return false
		}
	}
	return true
}

func removeOID(l []asn1.ObjectIdentifier, o asn1.ObjectIdentifier) []asn1.ObjectIdentifier {
	var out []asn1.ObjectIdentifier
	for _, x := range l {
		if !x.Equal(o) {
			out = append(out, x)
		}
	}
	return out
}

// parseTPMSAN reads the TCG attributes from the directoryName entries of
// a subjectAltName. ok is false when it has none.
func parseTPMSAN(v []byte) (info TPMInfo, ok bool, err error) {
	var names []asn1.RawValue
	rest, err := asn1.Unmarshal(v, &names)
	if err != nil {
		return info, false, err
	}
	if len(rest) != 0 {
		return info, false, errors.New("trailing data")
	}
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific || n.Tag != 4 || !n.IsCompound {
			continue // not a directoryName
		}
		var rdns pkix.RDNSequence
		rest, err := asn1.Unmarshal(n.Bytes, &rdns)
		if err != nil {
			return info, false, fmt.Errorf("directoryName: %v", err)
		}
		if len(rest) != 0 {
			return info, false, errors.New("directoryName: trailing data")
		}
		for _, rdn := range rdns {
			for _, atv := range rdn {
				s, isString := atv.Value.(string)
				if !isString {
					continue
				}
				switch {
				case atv.Type.Equal(oidTPMManufacturer):
					info.Manufacturer, ok = s, true
				case atv.Type.Equal(oidTPMModel):
					info.Model, ok = s, true
				case atv.Type.Equal(oidTPMVersion):
					info.Version, ok = s, true
				}
			}
		}
	}
	return info, ok, nil
}

// KeyHash names a public key: "sha256:" and the hex SHA-256 of its
// PKIX SubjectPublicKeyInfo DER (what `openssl pkey -pubin -outform DER |
// sha256sum` prints for the key).
func KeyHash(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Trust is what an EK is checked against: a CA store and an allowlist.
// Either may be nil (empty).
type Trust struct {
	Store *Store
	Allow *Allowlist
}

// Result says why an EK is trusted.
type Result struct {
	KeyHash string // KeyHash of the EK
	// AllowedAs is the allowlist entry's name when the EK is trusted by
	// the allowlist (then Cert and Chain may be nil).
	AllowedAs string
	Cert      *Cert               // the EK certificate, when there is one
	Chain     []*x509.Certificate // the verified chain, leaf first, ending at a store CA
}

// Verdict is a short human statement of the result.
func (r *Result) Verdict() string {
	if r.AllowedAs != "" {
		return fmt.Sprintf("ek %s allowlisted as %q", r.KeyHash, r.AllowedAs)
	}
	top := r.Chain[len(r.Chain)-1]
	return fmt.Sprintf("ek certificate (tpm %s %s) chains to %q", r.Cert.TPM.Manufacturer, r.Cert.TPM.Model, top.Subject.String())
}

// Check decides whether ek is a TPM's endorsement key the operator
// trusts. certDER is the EK certificate from the TPM (nil: none);
// chainDER are further certificates the TPM or agent supplied
// (intermediates from the TPM's NV indices): they are only candidates
// for chain building, never trust anchors. An allowlisted key is
// trusted without a certificate; a certificate, when given, must still
// be for the EK.
func (t *Trust) Check(ek crypto.PublicKey, certDER []byte, chainDER [][]byte, now time.Time) (*Result, error) {
	h, err := KeyHash(ek)
	if err != nil {
		return nil, fmt.Errorf("ek: %v", err)
	}
	r := &Result{KeyHash: h}
	var cert *Cert
	if len(certDER) > 0 {
		if cert, err = Parse(certDER); err != nil {
			return r, err
		}
		eq, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(ek) {
			return r, fmt.Errorf("%w (ek %s)", ErrKeyMismatch, h)
		}
		r.Cert = cert
	}
	if name, ok := t.Allow.Lookup(h); ok {
		r.AllowedAs = name
		return r, nil
	}
	if cert == nil {
		return r, fmt.Errorf("%w: the tpm has none, and its ek %s is not in the allowlist", ErrNoCertificate, h)
	}
	if err := checkProfile(cert); err != nil {
		return r, err
	}
	if t.Store == nil || t.Store.Len() == 0 {
		return r, fmt.Errorf("%w: no ek ca store is configured, and ek %s is not in the allowlist", ErrUntrusted, h)
	}
	inter := t.Store.intermediates.Clone()
	for i, b := range chainDER {
		c, err := Parse(b)
		if err != nil {
			return r, fmt.Errorf("chain certificate %d: %w", i, err)
		}
		inter.AddCert(c.Certificate)
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: t.Store.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return r, fmt.Errorf("%w: issuer %q (tpm %s %s): %v", ErrUntrusted, cert.Issuer.String(), cert.TPM.Manufacturer, cert.TPM.Model, err)
	}
	r.Chain = chains[0]
	return r, nil
}

// checkProfile checks the TCG EK Credential Profile's fields that tell
// an EK certificate from another certificate for the same key.
func checkProfile(c *Cert) error {
	switch {
	case c.TPM.Manufacturer == "":
		return fmt.Errorf("%w: no tpm manufacturer (2.23.133.2.1) in its subjectAltName", ErrProfile)
	case !strings.HasPrefix(c.TPM.Manufacturer, "id:"):
		return fmt.Errorf("%w: tpm manufacturer %q is not a TCG vendor id", ErrProfile, c.TPM.Manufacturer)
	case c.IsCA:
		return fmt.Errorf("%w: a ca certificate", ErrProfile)
	case len(c.UnhandledCriticalExtensions) > 0:
		return fmt.Errorf("%w: unknown critical extension %v", ErrProfile, c.UnhandledCriticalExtensions[0])
	}
	if len(c.ExtKeyUsage) > 0 || len(c.UnknownExtKeyUsage) > 0 {
		found := false
		for _, o := range c.UnknownExtKeyUsage {
			found = found || o.Equal(oidEKCertificate)
		}
		if !found {
			return fmt.Errorf("%w: extended key usage without tcg-kp-EKCertificate (2.23.133.8.1)", ErrProfile)
		}
	}
	return nil
}

// sameBytes reports whether two DER names are equal.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
