// SPDX-License-Identifier: Apache-2.0

// Package quote verifies TPM 2.0 quotes without a TPM: it parses the
// quoted TPMS_ATTEST and the TPMT_SIGNATURE, checks the signature with an
// attestation key's public part, the nonce, and the PCR digest against
// PCR values the caller was given, and returns the PCR values and the
// TPM's clock only when all of that holds.
//
// The checks of [Verify], in order:
//
//   - the attestation key is a restricted signing key (parsed once by
//     [ParseAK]);
//   - the signature is the AK's, with the AK's scheme and hash, over the
//     attestation bytes exactly as received;
//   - the structure is TPM-generated (TPM_GENERATED_VALUE) and of type
//     TPM_ST_ATTEST_QUOTE (it is parsed only after its signature
//     verified);
//   - its qualifying data is the caller's nonce;
//   - the quoted selection names exactly the PCRs given, no more, no
//     fewer;
//   - the quoted PCR digest is the digest of the given values, in the
//     selection's order.
//
// Comparing the clock with the previous quote's (TPM resets, restarts,
// rollbacks) is [CheckClock]'s job, since it needs state. The clock's
// "safe" flag is reported, not required: a TPM that lost power without an
// orderly shutdown reports safe=NO for up to an hour, and the comparisons
// CheckClock makes do not depend on it.
//
// For keys outside the endorsement hierarchy, TPMs obfuscate the reset
// and restart counts (and the firmware version) by adding a per-key
// constant: they are comparable only between quotes by the same key, and
// only modulo 2^32, which is how CheckClock compares them.
package quote

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha1" // quote hashes
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/digest"
)

// Conditions callers branch on. A verification failure is an *Error
// wrapping exactly one of them.
var (
	ErrMalformed = errors.New("malformed quote")
	ErrSignature = errors.New("quote signature does not verify with the attestation key")
	ErrNotQuote  = errors.New("attestation is not a quote")
	ErrNonce     = errors.New("quote nonce is not the nonce sent (stale or replayed quote)")
	ErrSelection = errors.New("quoted pcr selection differs from the pcrs given")
	ErrPCRDigest = errors.New("pcr values do not match the quoted pcr digest")
	ErrAK        = errors.New("unacceptable attestation key")
	ErrClock     = errors.New("tpm clock went backwards")
)

// Error is a verification failure: Kind is one of the sentinels above.
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "quote: " + e.Kind.Error()
	}
	return "quote: " + e.Kind.Error() + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Clock is the TPM's TPMS_CLOCK_INFO from a quote.
type Clock struct {
	Clock        uint64 `json:"clock"` // milliseconds the TPM has been powered
	ResetCount   uint32 `json:"reset_count"`
	RestartCount uint32 `json:"restart_count"`
	Safe         bool   `json:"safe"`
}

// Verified is a verified quote: what the TPM signed.
type Verified struct {
	PCRs            digest.PCRs
	Clock           Clock
	FirmwareVersion uint64
}

// maxStruct bounds the bytes of an AK public, attestation or signature.
const maxStruct = 4096

// unmarshal parses b as T strictly: no panic, no trailing bytes.
func unmarshal[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte) (v *T, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("unparsable: %v", r)
		}
	}()
	v, err = unmarshalLoose[T, P](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*v), b) {
		return nil, errors.New("not in canonical form (trailing or inconsistent bytes)")
	}
	return v, nil
}

// unmarshalLoose parses b as T with go-tpm without panicking, ignoring
// what follows T (unmarshal then checks the form). Quote structures are
// not read with it: parse.go decodes them, faster and with the
// TPM_GENERATED_VALUE check go-tpm leaves out.
func unmarshalLoose[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte) (v *T, err error) {
	if len(b) > maxStruct {
		return nil, fmt.Errorf("%d bytes (at most %d)", len(b), maxStruct)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("unparsable: %v", r)
		}
	}()
	return tpm2.Unmarshal[T, P](b)
}

// AK is a parsed, acceptable attestation key public part.
type AK struct {
	public tpm2.TPMTPublic
	raw    []byte
	key    crypto.PublicKey
	hash   crypto.Hash
	name   []byte
}

// ParseAK parses a marshalled TPMT_PUBLIC and accepts it as an AK only if
// it is a restricted signing key that never leaves its TPM (fixedTPM,
// fixedParent, sensitiveDataOrigin) with an ECDSA or RSASSA scheme of
// SHA-256 or stronger, on P-256/P-384 or RSA of at least 2048 bits.
func ParseAK(tpmtPublic []byte) (*AK, error) {
	pub, err := unmarshal[tpm2.TPMTPublic](tpmtPublic)
	if err != nil {
		return nil, fail(ErrAK, "%v", err)
	}
	a := pub.ObjectAttributes
	if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, fail(ErrAK, "not a restricted, TPM-generated, non-duplicable signing key")
	}
	ak := &AK{public: *pub, raw: bytes.Clone(tpmtPublic)}
	if ak.key, err = tpm2.Pub(*pub); err != nil {
		return nil, fail(ErrAK, "%v", err)
	}
	var alg tpm2.TPMIAlgHash
	switch pub.Type {
	case tpm2.TPMAlgECC:
		p, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, fail(ErrAK, "%v", err)
		}
		if p.CurveID != tpm2.TPMECCNistP256 && p.CurveID != tpm2.TPMECCNistP384 {
			return nil, fail(ErrAK, "curve 0x%x not accepted", p.CurveID)
		}
		if p.Scheme.Scheme != tpm2.TPMAlgECDSA {
			return nil, fail(ErrAK, "ecc scheme 0x%x, want ecdsa", p.Scheme.Scheme)
		}
		d, err := p.Scheme.Details.ECDSA()
		if err != nil {
			return nil, fail(ErrAK, "%v", err)
		}
		alg = d.HashAlg
	case tpm2.TPMAlgRSA:
		p, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, fail(ErrAK, "%v", err)
		}
		if p.KeyBits < 2048 {
			return nil, fail(ErrAK, "rsa key of %d bits", p.KeyBits)
		}
		if p.Scheme.Scheme != tpm2.TPMAlgRSASSA {
			return nil, fail(ErrAK, "rsa scheme 0x%x, want rsassa", p.Scheme.Scheme)
		}
		d, err := p.Scheme.Details.RSASSA()
		if err != nil {
			return nil, fail(ErrAK, "%v", err)
		}
		alg = d.HashAlg
	default:
		return nil, fail(ErrAK, "key type 0x%x", pub.Type)
	}
	h, ok := hashOf(alg)
	if !ok || h == crypto.SHA1 {
		return nil, fail(ErrAK, "signing hash 0x%x not accepted", alg)
	}
	ak.hash = h
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fail(ErrAK, "%v", err)
	}
	ak.name = name.Buffer
	return ak, nil
}

// Name returns the AK's TPM name (nameAlg || digest of the public area).
func (ak *AK) Name() []byte { return bytes.Clone(ak.name) }

// Public returns the AK's public key.
func (ak *AK) Public() crypto.PublicKey { return ak.key }

// Marshal returns the TPMT_PUBLIC the AK was parsed from.
func (ak *AK) Marshal() []byte { return bytes.Clone(ak.raw) }

var hashes = []struct {
	h   crypto.Hash
	alg tpm2.TPMAlgID
}{
	{crypto.SHA1, tpm2.TPMAlgSHA1},
	{crypto.SHA256, tpm2.TPMAlgSHA256},
	{crypto.SHA384, tpm2.TPMAlgSHA384},
	{crypto.SHA512, tpm2.TPMAlgSHA512},
}

func hashOf(alg tpm2.TPMAlgID) (crypto.Hash, bool) {
	for _, x := range hashes {
		if x.alg == alg {
			return x.h, true
		}
	}
	return 0, false
}

// Verify verifies a quote (marshalled TPMS_ATTEST and TPMT_SIGNATURE)
// made by ak over nonce, against the PCR values the attester reported.
// It returns the verified PCR values and clock only if every check in the
// package documentation passes; otherwise an *Error.
func Verify(ak *AK, attest, signature, nonce []byte, pcrs digest.PCRs) (*Verified, error) {
	if ak == nil {
		return nil, fail(ErrAK, "no attestation key")
	}
	if err := ak.verifySignature(attest, signature); err != nil {
		return nil, err
	}
	att, err := parseAttestQuote(attest)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(att.extraData, nonce) != 1 {
		return nil, fail(ErrNonce, "quote has %x, sent %x", att.extraData, nonce)
	}
	digest, err := pcrDigest(ak.hash, att.pcrSelect, pcrs)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(digest, att.pcrDigest) != 1 {
		return nil, fail(ErrPCRDigest, "quoted %x, values give %x", att.pcrDigest, digest)
	}
	c := att.clock
	return &Verified{
		PCRs:            pcrs.Clone(),
		Clock:           Clock{Clock: c.Clock, ResetCount: c.ResetCount, RestartCount: c.RestartCount, Safe: bool(c.Safe)},
		FirmwareVersion: att.firmware,
	}, nil
}

func (ak *AK) verifySignature(attest, signature []byte) error {
	if len(attest) == 0 || len(attest) > maxStruct {
		return fail(ErrMalformed, "attestation of %d bytes", len(attest))
	}
	sig, err := parseSignature(signature)
	if err != nil {
		return err
	}
	h := ak.hash.New()
	h.Write(attest)
	digest := h.Sum(nil)
	switch key := ak.key.(type) {
	case *ecdsa.PublicKey:
		if sig.alg != tpm2.TPMAlgECDSA {
			return fail(ErrSignature, "signature algorithm 0x%x, the ak signs ecdsa", sig.alg)
		}
		if hh, ok := hashOf(sig.hash); !ok || hh != ak.hash {
			return fail(ErrSignature, "signature hash 0x%x", sig.hash)
		}
		r := new(big.Int).SetBytes(sig.r)
		ss := new(big.Int).SetBytes(sig.s)
		if !ecdsa.Verify(key, digest, r, ss) {
			return fail(ErrSignature, "")
		}
	case *rsa.PublicKey:
		if sig.alg != tpm2.TPMAlgRSASSA {
			return fail(ErrSignature, "signature algorithm 0x%x, the ak signs rsassa", sig.alg)
		}
		if hh, ok := hashOf(sig.hash); !ok || hh != ak.hash {
			return fail(ErrSignature, "signature hash 0x%x", sig.hash)
		}
		if rsa.VerifyPKCS1v15(key, ak.hash, digest, sig.sig) != nil {
			return fail(ErrSignature, "")
		}
	default:
		return fail(ErrAK, "unsupported key")
	}
	return nil
}

// pcrDigest checks that pcrs holds exactly the selected PCRs and returns
// the hash of their values in selection order.
func pcrDigest(h crypto.Hash, sel tpm2.TPMLPCRSelection, pcrs digest.PCRs) ([]byte, error) {
	d := h.New()
	n := 0
	seen := map[digest.Algo]bool{}
	for _, s := range sel.PCRSelections {
		bh, ok := hashOf(s.Hash)
		bank, _ := digest.AlgoFor(bh)
		if !ok {
			return nil, fail(ErrSelection, "unknown bank 0x%x", s.Hash)
		}
		if seen[bank] {
			return nil, fail(ErrSelection, "bank %v selected twice", bank)
		}
		seen[bank] = true
		vals := pcrs[bank]
		for i, b := range s.PCRSelect {
			for bit := 0; bit < 8; bit++ {
				if b&(1<<bit) == 0 {
					continue
				}
				idx := i*8 + bit
				v, ok := vals[idx]
				if !ok {
					return nil, fail(ErrSelection, "pcr %d of bank %v quoted but not given", idx, bank)
				}
				if len(v) != bank.Size() {
					return nil, fail(ErrSelection, "pcr %d of bank %v has %d bytes", idx, bank, len(v))
				}
				d.Write(v)
				n++
			}
		}
	}
	given := 0
	for bank, vals := range pcrs {
		if !seen[bank] && len(vals) > 0 {
			return nil, fail(ErrSelection, "bank %v given but not quoted", bank)
		}
		given += len(vals)
	}
	if given != n {
		return nil, fail(ErrSelection, "%d pcr values given, %d quoted", given, n)
	}
	return d.Sum(nil), nil
}

// ClockChange is what CheckClock concludes from two quotes' clocks.
type ClockChange int

const (
	// SameBoot: same reset and restart counts, clock not behind.
	SameBoot ClockChange = iota
	// Restarted: the restart count grew (TPM2_Shutdown(STATE) and resume);
	// PCRs were kept, the boot is the same.
	Restarted
	// Reset: the reset count grew: the TPM was reset (a reboot); PCRs
	// started over and the measurement lists with them.
	Reset
)

// CheckClock compares a quote's clock with the previous verified quote's
// from the same TPM. A reset or restart count that went down, or a clock
// behind the previous one within the same boot, is an *Error wrapping
// ErrClock (a replayed quote, another TPM, or a TPM2_Clear).
//
// The counts are compared modulo 2^32 (they are obfuscated by an added
// constant): a difference below 2^31 is an increase.
func CheckClock(prev, cur Clock) (ClockChange, error) {
	reset := cmp32(cur.ResetCount, prev.ResetCount)
	restart := cmp32(cur.RestartCount, prev.RestartCount)
	switch {
	case reset < 0:
		return 0, fail(ErrClock, "reset count went back by %d", prev.ResetCount-cur.ResetCount)
	case reset > 0:
		return Reset, nil
	case restart < 0:
		return 0, fail(ErrClock, "restart count went back by %d", prev.RestartCount-cur.RestartCount)
	case cur.Clock < prev.Clock:
		return 0, fail(ErrClock, "clock %d ms after %d ms", cur.Clock, prev.Clock)
	case restart > 0:
		return Restarted, nil
	}
	return SameBoot, nil
}

// cmp32 compares a and b as counters modulo 2^32.
func cmp32(a, b uint32) int {
	switch d := a - b; {
	case d == 0:
		return 0
	case d < 1<<31:
		return 1
	}
	return -1
}
