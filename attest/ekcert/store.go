// SPDX-License-Identifier: Apache-2.0

package ekcert

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Store holds the CA certificates EK certificates must chain to: TPM
// makers' roots and intermediates, and any CA the operator adds (such as
// swtpm-localca's, for lab machines).
//
// Roles are decided from the certificates themselves: a self-signed
// certificate is a root; a certificate issued (and signed) by another
// certificate of the store is an intermediate, used to build chains to
// that root; any other certificate is a trust anchor too (a maker's root
// that is cross-signed by a CA the store lacks, such as STMicro's
// "STM TPM ECC Root CA 01", issued by a GlobalSign root).
type Store struct {
	roots, intermediates *x509.CertPool
	certs                []*x509.Certificate
	files                []string
}

// Len is the number of certificates in the store.
func (s *Store) Len() int {
	if s == nil {
		return 0
	}
	return len(s.certs)
}

// Certificates returns the store's certificates (for listing).
func (s *Store) Certificates() []*x509.Certificate { return slices.Clone(s.certs) }

// NewStore builds a store from certificates.
func NewStore(certs ...*x509.Certificate) *Store {
	s := &Store{roots: x509.NewCertPool(), intermediates: x509.NewCertPool()}
	s.certs = certs
	for _, c := range certs {
		if s.issuedInStore(c) {
			s.intermediates.AddCert(c)
		} else {
			s.roots.AddCert(c)
		}
	}
	return s
}

// issuedInStore reports whether c is signed by another certificate of
// the store (not by itself).
func (s *Store) issuedInStore(c *x509.Certificate) bool {
	for _, p := range s.certs {
		if p == c || p.Equal(c) {
			continue
		}
		if sameBytes(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return true
		}
	}
	return false
}

// LoadStore reads every file in the directories (not recursive; names
// starting with "." and README* are skipped): PEM files with one or more
// CERTIFICATE blocks, or one DER certificate. A file that is neither is
// an error naming it.
func LoadStore(dirs ...string) (*Store, error) {
	var certs []*x509.Certificate
	var files []string
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("ek ca store: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || strings.HasPrefix(strings.ToUpper(name), "README") || e.IsDir() {
				continue
			}
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("ek ca store: %w", err)
			}
			cs, err := ParseCertificates(b)
			if err != nil {
				return nil, fmt.Errorf("ek ca store: %s: %w", p, err)
			}
			certs = append(certs, cs...)
			files = append(files, p)
		}
	}
	s := NewStore(certs...)
	s.files = files
	return s, nil
}

// ParseCertificates reads PEM CERTIFICATE blocks (text around them is
// ignored) or, if b holds no PEM, one DER certificate.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		return out, nil
	}
	if strings.Contains(string(b), "-----BEGIN") {
		return nil, errors.New("no CERTIFICATE block")
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("neither PEM nor a DER certificate: %v", err)
	}
	return []*x509.Certificate{c}, nil
}
