// SPDX-License-Identifier: Apache-2.0

package sig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
)

// SignDigest signs a file digest computed with algo and returns the label
// signature (type 0x03, version 2) with keyid. The signer must sign the
// digest as given: RSA keys give PKCS#1 v1.5 with the DigestInfo of algo,
// ECDSA keys give an ASN.1 DER signature.
func SignDigest(signer crypto.Signer, keyID uint32, algo digest.Algo, sum []byte) (*label.Signature, error) {
	h, ok := algo.CryptoHash()
	if !ok {
		return nil, fmt.Errorf("cannot sign with hash algorithm %s", algo)
	}
	if len(sum) != h.Size() {
		return nil, fmt.Errorf("%s digest of %d bytes", algo, len(sum))
	}
	s, err := signer.Sign(rand.Reader, sum, h)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if len(s) == 0 || len(s) > 0xffff {
		return nil, fmt.Errorf("signing: a %d-byte signature does not fit a label", len(s))
	}
	return &label.Signature{Type: label.TypeDigsig, Version: 2, Algo: algo, KeyID: keyID, Sig: s}, nil
}

// Errors from VerifyDigest, so that callers can tell a changed file from a
// damaged signature.
var (
	// ErrDigestMismatch: the signature is a valid signature by the key, but
	// over another digest: the content changed, or the label was copied
	// from another file.
	ErrDigestMismatch = errors.New("signature is over another digest")
	// ErrBadSignature: the signature is not one the key made (damaged,
	// forged, or made by another key with the same keyid).
	ErrBadSignature = errors.New("signature does not verify")
	// ErrUnsupportedKey: the certificate's key type cannot verify labels.
	ErrUnsupportedKey = errors.New("unsupported key type")
)

// VerifyDigest checks sig over digest (computed with algo) with pub.
//
// For RSA it distinguishes ErrDigestMismatch from ErrBadSignature by
// opening the signature with the public key and reading the DigestInfo it
// carries. ECDSA cannot say over what a signature was made: a well-formed
// ECDSA signature that does not verify is reported as ErrDigestMismatch,
// a malformed one as ErrBadSignature.
func VerifyDigest(pub crypto.PublicKey, algo digest.Algo, sum, sig []byte) error {
	h, ok := algo.CryptoHash()
	if !ok {
		return fmt.Errorf("%w: %s", digest.ErrUnsupported, algo)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, h, sum, sig) == nil {
			return nil
		}
		signed, err := rsaSignedDigest(k, h, sig)
		if err != nil {
			return err
		}
		if !bytes.Equal(signed, sum) {
			return ErrDigestMismatch
		}
		return ErrBadSignature // unreachable for a correct RSA implementation
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, sum, sig) {
			return nil
		}
		if !wellFormedECDSA(k, sig) {
			return ErrBadSignature
		}
		return ErrDigestMismatch
	}
	return fmt.Errorf("%w %T", ErrUnsupportedKey, pub)
}

// DigestInfo prefixes (RFC 8017 §9.2 notes) of the hashes labels use.
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA1:     {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224:   {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256:   {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384:   {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512:   {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
	crypto.SHA3_256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA3_384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x09, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA3_512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x0a, 0x05, 0x00, 0x04, 0x40},
}

// rsaSignedDigest applies the public key to sig and returns the digest in
// its EMSA-PKCS1-v1_5 encoding, or ErrBadSignature if the encoding is not
// one for hash h. Only public values are involved.
func rsaSignedDigest(k *rsa.PublicKey, h crypto.Hash, sig []byte) ([]byte, error) {
	size := k.Size()
	if len(sig) != size {
		return nil, ErrBadSignature
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(k.N) >= 0 {
		return nil, ErrBadSignature
	}
	em := s.Exp(s, big.NewInt(int64(k.E)), k.N).FillBytes(make([]byte, size))
	prefix, ok := digestInfoPrefix[h]
	if !ok {
		return nil, ErrBadSignature
	}
	tLen := len(prefix) + h.Size()
	if size < tLen+11 || em[0] != 0 || em[1] != 1 || em[size-tLen-1] != 0 {
		return nil, ErrBadSignature
	}
	for _, b := range em[2 : size-tLen-1] {
		if b != 0xff {
			return nil, ErrBadSignature
		}
	}
	if !bytes.Equal(em[size-tLen:size-h.Size()], prefix) {
		return nil, ErrBadSignature
	}
	return em[size-h.Size():], nil
}

func wellFormedECDSA(k *ecdsa.PublicKey, sig []byte) bool {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	if err != nil || len(rest) != 0 {
		return false
	}
	n := k.Curve.Params().N
	return rs.R.Sign() > 0 && rs.S.Sign() > 0 && rs.R.Cmp(n) < 0 && rs.S.Cmp(n) < 0
}

// Keyring holds trusted certificates indexed by the keyids under which
// labels name them.
type Keyring struct {
	byID map[uint32][]*x509.Certificate
}

// NewKeyring returns a keyring of certs.
func NewKeyring(certs ...*x509.Certificate) *Keyring {
	k := &Keyring{byID: make(map[uint32][]*x509.Certificate)}
	for _, c := range certs {
		k.Add(c)
	}
	return k
}

// Add trusts cert under each of its keyids (see CertKeyIDs).
func (k *Keyring) Add(cert *x509.Certificate) {
	for _, id := range CertKeyIDs(cert) {
		k.byID[id] = append(k.byID[id], cert)
	}
}

// Len returns the number of keyids the keyring answers.
func (k *Keyring) Len() int { return len(k.byID) }

// Lookup returns the certificates that a label with keyid may name.
func (k *Keyring) Lookup(keyID uint32) []*x509.Certificate {
	if k == nil {
		return nil
	}
	return k.byID[keyID]
}
