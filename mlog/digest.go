// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	_ "crypto/sha1" // the PCR banks
	_ "crypto/sha256"
	_ "crypto/sha3"
	_ "crypto/sha512"
	"fmt"
	"hash"

	"github.com/intactsec/intact/digest"
)

// NumPCRs is the number of PCRs a TPM has (and the bound on a record's PCR).
const NumPCRs = digest.NumPCRs

// bankHash returns a new hash for a PCR bank.
func bankHash(bank digest.Algo) (hash.Hash, error) {
	h, ok := bank.CryptoHash()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedBank, bank)
	}
	return h.New(), nil
}

// TemplateDigest computes the record's template digest in bank: the hash
// of the template data, or for template "ima" the hash of the file digest
// and the name zero-padded to 256 bytes. A violation's digest is not
// computed by the kernel; use ExtendDigest for what the PCR is extended by.
func (r *Record) TemplateDigest(bank digest.Algo) ([]byte, error) {
	h, err := bankHash(bank)
	if err != nil {
		return nil, err
	}
	if err := r.writeTemplate(h); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

var zeroName [maxIMAName + 1]byte

// writeTemplate writes the bytes the template digest is computed over.
func (r *Record) writeTemplate(h hash.Hash) error {
	if r.Template != TemplateIMA {
		h.Write(r.Data)
		return nil
	}
	f, err := r.imaFields()
	if err != nil {
		return err
	}
	h.Write(f[0].Data)
	name := f[1].Data[:len(f[1].Data)-1]
	h.Write(name)
	h.Write(zeroName[:len(zeroName)-len(name)])
	return nil
}

// CheckTemplateDigest checks that the stored digest, of bank, is the
// digest of the template data. Violations (zero digests) pass.
func (r *Record) CheckTemplateDigest(bank digest.Algo) error {
	if r.Violation() {
		return nil
	}
	d, err := r.TemplateDigest(bank)
	if err != nil {
		return err
	}
	if string(d) != string(r.Digest) {
		return &TemplateHashError{Record: -1, Bank: bank, Stored: r.Digest, Want: d}
	}
	return nil
}

// ff returns size bytes of 0xff: what the kernel extends for a violation.
func ff(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// ExtendDigest returns what the record extends into the PCR of bank: its
// template digest in that bank, or all 0xff for a violation.
func (r *Record) ExtendDigest(bank digest.Algo) ([]byte, error) {
	if r.Violation() {
		if bank.Size() == 0 {
			return nil, fmt.Errorf("%w: %s", ErrUnsupportedBank, bank)
		}
		return ff(bank.Size()), nil
	}
	return r.TemplateDigest(bank)
}
