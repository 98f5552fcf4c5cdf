// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/google/go-tpm/tpm2"
)

// KeyType is the type of a TPM-held signing key.
type KeyType string

// Key types [TPM.CreateKey] makes.
const (
	KeyECP256  KeyType = "ec-p256"
	KeyRSA2048 KeyType = "rsa2048"
)

// KeyTypes lists the key types, for usage messages.
var KeyTypes = []string{string(KeyECP256), string(KeyRSA2048)}

// ParseKeyType parses "ec-p256" or "rsa2048".
func ParseKeyType(s string) (KeyType, error) {
	switch KeyType(s) {
	case KeyECP256, KeyRSA2048:
		return KeyType(s), nil
	}
	return "", fmt.Errorf("tpm: unknown key type %q (want ec-p256 or rsa2048)", s)
}

// keyTemplate is the public template of a signing key: an unrestricted
// signing key (so it signs digests computed outside the TPM, as IMA
// labels need) with the null scheme (the scheme and hash are chosen per
// signature), generated inside the TPM (sensitiveDataOrigin), never to
// leave it (fixedTPM, fixedParent), with an empty authorization.
func keyTemplate(kt KeyType) (tpm2.TPMTPublic, error) {
	attrs := tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		SignEncrypt:         true,
		NoDA:                true,
	}
	switch kt {
	case KeyECP256:
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
				CurveID:   tpm2.TPMECCNistP256,
				KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
			}),
		}, nil
	case KeyRSA2048:
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
				KeyBits:   2048,
			}),
		}, nil
	}
	return tpm2.TPMTPublic{}, fmt.Errorf("tpm: unknown key type %q", kt)
}

// CreateKey creates a signing key of type kt under the storage root key.
// The private part never leaves the TPM in the clear: the returned blob
// holds it wrapped, loadable only by this TPM (until it is cleared).
func (t *TPM) CreateKey(kt KeyType) (*KeyBlob, error) {
	tmpl, err := keyTemplate(kt)
	if err != nil {
		return nil, err
	}
	const op = "create key"
	var kb *KeyBlob
	err = t.withSRK(op, func(s *srk) error {
		rsp, err := tpm2.Create{
			ParentHandle: tpm2.AuthHandle{Handle: s.handle.Handle, Name: s.handle.Name, Auth: tpm2.PasswordAuth(nil)},
			InPublic:     tpm2.New2B(tmpl),
		}.Execute(t.tr)
		if err != nil {
			return wrap(op, err)
		}
		kb = &KeyBlob{Type: kt, Public: rsp.OutPublic.Bytes(), Private: rsp.OutPrivate.Buffer}
		return nil
	})
	return kb, err
}

// Key is a signing key loaded in the TPM. It is a [crypto.Signer] whose
// Sign signs a precomputed digest: RSA PKCS#1 v1.5 (the TPM adds the
// DigestInfo of opts.HashFunc()) or ECDSA returning an ASN.1 DER
// signature — what IMA labels hold. Close flushes it from the TPM.
type Key struct {
	t      *TPM
	typ    KeyType
	handle tpm2.NamedHandle
	pub    crypto.PublicKey

	mu     sync.Mutex
	closed bool
}

var _ crypto.Signer = (*Key)(nil)

// LoadKey loads a key blob made by [TPM.CreateKey]. A blob from another
// TPM, or a damaged one, gives [ErrForeignKey].
func (t *TPM) LoadKey(kb *KeyBlob) (*Key, error) {
	const op = "load key"
	if err := kb.check(); err != nil {
		return nil, err
	}
	var k *Key
	err := t.withSRK(op, func(s *srk) error {
		h, err := t.load(s, kb.Public, kb.Private)
		if err != nil {
			return loadFailed(op, err)
		}
		k = &Key{t: t, typ: kb.Type, handle: h}
		if err := k.readPublic(); err != nil {
			tpm2.FlushContext{FlushHandle: h.Handle}.Execute(t.tr)
			return err
		}
		return nil
	})
	return k, err
}

// readPublic reads the loaded key's public area from the TPM and checks
// it is a signing key of the blob's type.
func (k *Key) readPublic() error {
	const op = "load key"
	rsp, err := tpm2.ReadPublic{ObjectHandle: k.handle.Handle}.Execute(k.t.tr)
	if err != nil {
		return wrap(op, err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return wrap(op, err)
	}
	a := pub.ObjectAttributes
	if !a.SignEncrypt || a.Restricted || a.Decrypt {
		return &Error{Op: op, Kind: ErrMalformed, Err: errors.New("not an unrestricted signing key")}
	}
	cpub, err := tpm2.Pub(*pub)
	if err != nil {
		return wrap(op, err)
	}
	switch p := cpub.(type) {
	case *ecdsa.PublicKey:
		if k.typ != KeyECP256 || p.Curve != elliptic.P256() {
			return &Error{Op: op, Kind: ErrMalformed, Err: fmt.Errorf("an ecdsa %s key in a %s blob", p.Curve.Params().Name, k.typ)}
		}
	case *rsa.PublicKey:
		if k.typ != KeyRSA2048 || p.N.BitLen() != 2048 {
			return &Error{Op: op, Kind: ErrMalformed, Err: fmt.Errorf("a %d-bit rsa key in a %s blob", p.N.BitLen(), k.typ)}
		}
	default:
		return &Error{Op: op, Kind: ErrMalformed, Err: fmt.Errorf("unsupported public key %T", cpub)}
	}
	k.pub = cpub
	return nil
}

// Public returns the key's public key (*ecdsa.PublicKey or *rsa.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Type returns the key's type.
func (k *Key) Type() KeyType { return k.typ }

// Sign signs digest, which must be a digest made with opts.HashFunc()
// (sha1, sha256, sha384 or sha512, as the TPM supports). rand is unused:
// the TPM makes its own randomness. RSA-PSS is not supported.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	const op = "sign"
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, &Error{Op: op, Err: errors.New("rsa-pss is not supported")}
	}
	h := opts.HashFunc()
	alg, ok := algOf(h)
	if !ok {
		return nil, &Error{Op: op, Err: fmt.Errorf("unsupported hash %v (the tpm key signs sha1, sha256, sha384 or sha512 digests)", h)}
	}
	if len(digest) != h.Size() {
		return nil, &Error{Op: op, Err: fmt.Errorf("%d-byte digest for %v", len(digest), h)}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, &Error{Op: op, Err: errors.New("key closed")}
	}
	scheme := tpm2.TPMAlgECDSA
	if k.typ == KeyRSA2048 {
		scheme = tpm2.TPMAlgRSASSA
	}
	rsp, err := tpm2.Sign{
		KeyHandle: tpm2.AuthHandle{Handle: k.handle.Handle, Name: k.handle.Name, Auth: tpm2.PasswordAuth(nil)},
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{Scheme: scheme,
			Details: tpm2.NewTPMUSigScheme(scheme, &tpm2.TPMSSchemeHash{HashAlg: alg})},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(k.t.tr)
	if err != nil {
		return nil, wrap(op, err)
	}
	if k.typ == KeyRSA2048 {
		s, err := rsp.Signature.Signature.RSASSA()
		if err != nil {
			return nil, wrap(op, err)
		}
		return s.Sig.Buffer, nil
	}
	s, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, wrap(op, err)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)})
}

// Close flushes the key from the TPM. The TPM connection stays open.
func (k *Key) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	_, err := tpm2.FlushContext{FlushHandle: k.handle.Handle}.Execute(k.t.tr)
	return wrap("close key", err)
}
