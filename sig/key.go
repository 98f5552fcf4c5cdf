// SPDX-License-Identifier: Apache-2.0

package sig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/intactsec/intact/internal/readfile"
)

// KeyTypes lists the key types GenerateKey makes, in the CLI's spelling.
var KeyTypes = []string{"ec-p256", "ec-p384", "rsa2048", "rsa3072", "rsa4096"}

// GenerateKey makes a new private key of the named type (see KeyTypes).
func GenerateKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "ec-p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec-p384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	case "rsa4096":
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q (want one of %s)", keyType, strings.Join(KeyTypes, ", "))
}

// MarshalPrivateKey encodes key as a PKCS#8 "PRIVATE KEY" PEM block, which
// OpenSSL and so evmctl read.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads the first private key PEM block in data: PKCS#8,
// PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"). Other blocks
// (a certificate concatenated with the key, as evmctl allows) are skipped.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key found")
		}
		if _, enc := b.Headers["DEK-Info"]; enc || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the private key is encrypted; intact reads unencrypted PEM keys (decrypt with openssl pkey)")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", b.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T (want RSA or ECDSA)", key)
	}
}

// LoadPrivateKey reads a PEM private key file (at most readfile.Key bytes).
func LoadPrivateKey(path string) (crypto.Signer, error) {
	data, err := readfile.Read(path, readfile.Key)
	if err != nil {
		return nil, err
	}
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// CreateCertificate returns a DER self-signed X.509 certificate for signer,
// fit for the kernel's .ima/_ima keyrings and for evmctl: keyUsage
// digitalSignature, not a CA, and a SubjectKeyIdentifier (SHA-1 of the key)
// whose last four bytes are the keyid.
func CreateCertificate(signer crypto.Signer, commonName string, validFor time.Duration) ([]byte, error) {
	skid, err := SubjectKeyID(signer.Public())
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"intact"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          skid,
		AuthorityKeyId:        skid,
	}
	if ec, ok := signer.Public().(*ecdsa.PublicKey); ok && ec.Curve == elliptic.P384() {
		tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
}

// BundledKeyID returns the keyid evmctl ima_sign uses for a key file that
// also holds a certificate (PEM, in either order): the last four bytes of
// the first certificate's SubjectKeyIdentifier, by which the kernel finds
// that certificate on its keyring. ok is false when the file holds no
// certificate, or one without a SubjectKeyIdentifier (then the keyid is the
// key's own, KeyID). A certificate for another key than pub is an error
// (evmctl would label with its keyid a signature no certificate verifies).
func BundledKeyID(keyFile []byte, pub crypto.PublicKey) (id uint32, ok bool, err error) {
	for data := keyFile; ; {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return 0, false, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return 0, false, fmt.Errorf("the certificate with the key: %w", err)
		}
		if k, isKey := pub.(interface{ Equal(crypto.PublicKey) bool }); !isKey || !k.Equal(c.PublicKey) {
			return 0, false, errors.New("the certificate with the key is for another key")
		}
		if n := len(c.SubjectKeyId); n >= 4 {
			return binary.BigEndian.Uint32(c.SubjectKeyId[n-4:]), true, nil
		}
		return 0, false, nil
	}
}

// ParseCertificates reads DER or PEM certificates (a PEM file may hold
// several).
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(data) > 0 && data[0] == 0x30 { // DER SEQUENCE
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("parsing DER certificate: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PEM certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate found (want DER or PEM X.509)")
	}
	return certs, nil
}

// LoadCertificates reads a DER or PEM certificate file (at most
// readfile.Cert bytes).
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := readfile.Read(path, readfile.Cert)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}
