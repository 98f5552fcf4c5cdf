// SPDX-License-Identifier: Apache-2.0

package quote

import (
	"encoding/binary"
	"errors"

	"github.com/google/go-tpm/tpm2"
)

// Hand-written decoders of the two structures every attestation carries.
// go-tpm's reflection-based tpm2.Unmarshal costs about as much as the
// ECDSA verification (some 90 µs per quote on the build machine); these
// read the same bytes the same way (big-endian, TPM2B size prefixes),
// ignore what follows the structure as unmarshalLoose does, and are
// compared with go-tpm by TestParseMatchesGoTPM and FuzzParseAttest.

var errShort = errors.New("truncated")

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = errShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// tpm2b reads a TPM2B: a 16-bit size and that many bytes.
func (r *reader) tpm2b() []byte { return r.take(int(r.u16())) }

// attestQuote is what Verify needs of a TPMS_ATTEST of type quote.
type attestQuote struct {
	extraData []byte
	clock     tpm2.TPMSClockInfo
	firmware  uint64
	pcrSelect tpm2.TPMLPCRSelection
	pcrDigest []byte
}

// maxSelections bounds TPML_PCR_SELECTION.count (a TPM has a few banks;
// the specification's HASH_COUNT is at most 16).
const maxSelections = 16

// parseAttestQuote decodes a TPMS_ATTEST. A structure that is not
// TPM-generated or is truncated is an error wrapping ErrMalformed; one of
// another type wraps ErrNotQuote.
func parseAttestQuote(b []byte) (*attestQuote, error) {
	if len(b) > maxStruct {
		return nil, fail(ErrMalformed, "attestation of %d bytes (at most %d)", len(b), maxStruct)
	}
	r := &reader{b: b}
	magic := r.u32()
	typ := r.u16()
	if r.err != nil {
		return nil, fail(ErrMalformed, "attestation: %v", r.err)
	}
	if magic != uint32(tpm2.TPMGeneratedValue) {
		return nil, fail(ErrMalformed, "attestation: magic 0x%x, not TPM_GENERATED_VALUE", magic)
	}
	if typ != uint16(tpm2.TPMSTAttestQuote) {
		return nil, fail(ErrNotQuote, "type 0x%x", typ)
	}
	q := &attestQuote{}
	r.tpm2b() // qualifiedSigner
	q.extraData = r.tpm2b()
	q.clock.Clock = r.u64()
	q.clock.ResetCount = r.u32()
	q.clock.RestartCount = r.u32()
	q.clock.Safe = r.u8() != 0 // as go-tpm (encoding/binary) reads a TPMI_YES_NO
	q.firmware = r.u64()
	n := r.u32()
	if r.err == nil && n > maxSelections {
		return nil, fail(ErrMalformed, "attestation: %d pcr selections", n)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		h := tpm2.TPMIAlgHash(r.u16())
		sel := r.take(int(r.u8()))
		q.pcrSelect.PCRSelections = append(q.pcrSelect.PCRSelections, tpm2.TPMSPCRSelection{Hash: h, PCRSelect: sel})
	}
	q.pcrDigest = r.tpm2b()
	if r.err != nil {
		return nil, fail(ErrMalformed, "attestation: %v", r.err)
	}
	return q, nil
}

// signature is a decoded TPMT_SIGNATURE of the schemes an AK may use.
type signature struct {
	alg  tpm2.TPMAlgID // TPMAlgECDSA or TPMAlgRSASSA
	hash tpm2.TPMAlgID
	r, s []byte // ECDSA
	sig  []byte // RSASSA
}

// parseSignature decodes a TPMT_SIGNATURE with an ECDSA or RSASSA
// signature; any other algorithm is an error wrapping ErrSignature (an
// AK signs with one of those two), a truncated one ErrMalformed.
func parseSignature(b []byte) (*signature, error) {
	if len(b) > maxStruct {
		return nil, fail(ErrMalformed, "signature of %d bytes (at most %d)", len(b), maxStruct)
	}
	r := &reader{b: b}
	s := &signature{alg: tpm2.TPMAlgID(r.u16())}
	switch s.alg {
	case tpm2.TPMAlgECDSA:
		s.hash = tpm2.TPMAlgID(r.u16())
		s.r = r.tpm2b()
		s.s = r.tpm2b()
	case tpm2.TPMAlgRSASSA:
		s.hash = tpm2.TPMAlgID(r.u16())
		s.sig = r.tpm2b()
	default:
		if r.err == nil {
			return nil, fail(ErrSignature, "signature algorithm 0x%x", s.alg)
		}
	}
	if r.err != nil {
		return nil, fail(ErrMalformed, "signature: %v", r.err)
	}
	return s, nil
}
