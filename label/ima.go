// SPDX-License-Identifier: Apache-2.0

// Package label encodes and parses the integrity labels that Linux IMA and
// EVM keep in extended attributes: security.ima (file content digests and
// signatures) and the signature header that security.evm shares with it.
// The hash algorithm ids in them are package digest's ([digest.Algo]).
//
// The package is pure: it turns bytes into structs and back, and never
// touches files, keys or the system. Everything it parses may come from an
// attacker (a label on a disk that was modified off-line), so parsers check
// every length and never panic; the fuzz targets in this package hold them to
// that.
//
// # Formats
//
// The byte formats are the kernel's (security/integrity/integrity.h):
//
//	0x01 IMA_XATTR_DIGEST     [0x01][digest]                 (md5/sha1 only)
//	0x04 IMA_XATTR_DIGEST_NG  [0x04][hash_algo][digest]
//	0x03 EVM_IMA_XATTR_DIGSIG [0x03][2][hash_algo][keyid BE32][size BE16][sig]
//	0x06 IMA_VERITY_DIGSIG    [0x06][3][hash_algo][keyid BE32][size BE16][sig]
//
// and, in security.evm, 0x02 (HMAC), 0x03 and 0x05 (portable signature).
// See docs/formats.md for the full reference.
package label

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/intactsec/intact/digest"
)

// Type is the first byte of a security.ima or security.evm value (the
// kernel's enum evm_ima_xattr_type).
type Type uint8

// The xattr types.
const (
	TypeDigest         Type = 0x01 // IMA_XATTR_DIGEST: legacy md5/sha1 digest
	TypeHMAC           Type = 0x02 // EVM_XATTR_HMAC (security.evm only)
	TypeDigsig         Type = 0x03 // EVM_IMA_XATTR_DIGSIG: signature
	TypeDigestNG       Type = 0x04 // IMA_XATTR_DIGEST_NG: algorithm + digest
	TypePortableDigsig Type = 0x05 // EVM_XATTR_PORTABLE_DIGSIG (security.evm only)
	TypeVerityDigsig   Type = 0x06 // IMA_VERITY_DIGSIG: sigv3 over an fs-verity digest
)

func (t Type) String() string {
	switch t {
	case TypeDigest:
		return "digest"
	case TypeHMAC:
		return "hmac"
	case TypeDigsig:
		return "signature"
	case TypeDigestNG:
		return "digest-ng"
	case TypePortableDigsig:
		return "portable-signature"
	case TypeVerityDigsig:
		return "verity-signature"
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// Errors returned (wrapped) by the parsers. A label that is malformed wraps
// ErrMalformed; a well-formed label that uses an algorithm, type or version
// this package cannot check wraps ErrUnsupported.
var (
	ErrMalformed   = errors.New("malformed label")
	ErrUnsupported = errors.New("unsupported label")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

// IMA is a parsed security.ima value. Exactly one of Digest, Sig and SigV1
// is set.
type IMA struct {
	Type Type
	// Algo is the digest algorithm of the file: the label's algorithm byte
	// for 0x04, md5 or sha1 for 0x01, the signature's hash_algo for 0x03
	// and 0x06.
	Algo   digest.Algo
	Digest []byte       // types 0x01 and 0x04
	Sig    *Signature   // types 0x03 (version 2) and 0x06
	SigV1  *SignatureV1 // type 0x03 version 1 (parsed only)
}

// ParseIMA parses a security.ima value. Its result never aliases b.
func ParseIMA(b []byte) (*IMA, error) {
	if len(b) == 0 {
		return nil, malformed("empty value")
	}
	switch t := Type(b[0]); t {
	case TypeDigest:
		return parseLegacyDigest(b)
	case TypeDigestNG:
		if len(b) < 2 {
			return nil, malformed("digest-ng label of %d bytes has no algorithm byte", len(b))
		}
		algo := digest.Algo(b[1])
		if !algo.Known() {
			return nil, unsupported("hash algorithm id %d", b[1])
		}
		if got := len(b) - 2; got != algo.Size() {
			return nil, malformed("%s digest of %d bytes, want %d", algo, got, algo.Size())
		}
		return &IMA{Type: t, Algo: algo, Digest: bytes.Clone(b[2:])}, nil
	case TypeDigsig:
		if len(b) >= 2 && b[1] == 1 {
			v1, err := ParseSignatureV1(b)
			if err != nil {
				return nil, err
			}
			return &IMA{Type: t, Algo: v1.Algo, SigV1: v1}, nil
		}
		fallthrough
	case TypeVerityDigsig:
		s, err := ParseSignature(b)
		if err != nil {
			return nil, err
		}
		return &IMA{Type: t, Algo: s.Algo, Sig: s}, nil
	case TypeHMAC, TypePortableDigsig:
		return nil, malformed("%s is an EVM type, not valid in security.ima", t)
	default:
		return nil, unsupported("label type 0x%02x", b[0])
	}
}

// parseLegacyDigest follows the kernel's ima_get_hash_algo for type 0x01:
// 17 bytes, or 21 bytes whose last four are zero, is md5; otherwise sha1.
func parseLegacyDigest(b []byte) (*IMA, error) {
	switch {
	case len(b) == 17:
		return &IMA{Type: TypeDigest, Algo: digest.MD5, Digest: bytes.Clone(b[1:])}, nil
	case len(b) == 21 && bytes.Equal(b[17:], []byte{0, 0, 0, 0}):
		return &IMA{Type: TypeDigest, Algo: digest.MD5, Digest: bytes.Clone(b[1:17])}, nil
	case len(b) == 21:
		return &IMA{Type: TypeDigest, Algo: digest.SHA1, Digest: bytes.Clone(b[1:])}, nil
	}
	return nil, malformed("legacy digest label of %d bytes, want 17 or 21", len(b))
}

// Marshal encodes the label in the kernel's format.
func (l *IMA) Marshal() []byte {
	switch {
	case l.Sig != nil:
		return l.Sig.Marshal()
	case l.SigV1 != nil:
		return l.SigV1.Marshal()
	}
	return DigestLabel(l.Algo, l.Digest)
}

// DigestLabel returns the digest label that evmctl ima_hash and the kernel's
// fix mode write: type 0x01 for md5 and sha1 (algorithm ids up to sha1),
// type 0x04 with the algorithm byte otherwise.
func DigestLabel(algo digest.Algo, sum []byte) []byte {
	if algo <= digest.SHA1 {
		return append([]byte{byte(TypeDigest)}, sum...)
	}
	return append([]byte{byte(TypeDigestNG), byte(algo)}, sum...)
}

// sigHeaderLen is the packed size of the v2/v3 signature header including
// the type byte: type, version, hash_algo, keyid (4), sig_size (2).
const sigHeaderLen = 9

// Signature is a version 2 or 3 signature: the 9-byte header and the raw
// signature (PKCS#1 v1.5 for RSA, ASN.1 DER for ECDSA). The same layout is
// used by security.ima (0x03, 0x06) and security.evm (0x03, 0x05).
type Signature struct {
	Type    Type
	Version uint8
	Algo    digest.Algo
	KeyID   uint32
	Sig     []byte
}

// ParseSignature parses a signature with a version 2 or 3 header, with the
// kernel's checks: the header is complete, sig_size equals the number of
// bytes that follow it exactly and is not zero, the version suits the type.
func ParseSignature(b []byte) (*Signature, error) {
	if len(b) < sigHeaderLen {
		return nil, malformed("signature of %d bytes is shorter than its %d-byte header", len(b), sigHeaderLen)
	}
	s := &Signature{
		Type:    Type(b[0]),
		Version: b[1],
		Algo:    digest.Algo(b[2]),
		KeyID:   binary.BigEndian.Uint32(b[3:7]),
	}
	switch s.Type {
	case TypeDigsig, TypePortableDigsig, TypeVerityDigsig:
	default:
		return nil, malformed("%s is not a signature type", s.Type)
	}
	size := int(binary.BigEndian.Uint16(b[7:9]))
	if size == 0 || size != len(b)-sigHeaderLen {
		return nil, malformed("signature size field says %d bytes, %d follow the header", size, len(b)-sigHeaderLen)
	}
	switch {
	case s.Version == 2 && s.Type != TypeVerityDigsig:
	case s.Version == 3:
		// sigv3 (signs a hash of ima_file_id): parsed, not verified here.
	case s.Version == 2 || s.Version == 1:
		return nil, malformed("%s with signature version %d", s.Type, s.Version)
	default:
		return nil, unsupported("signature version %d", s.Version)
	}
	if !s.Algo.Known() {
		return nil, unsupported("hash algorithm id %d", uint8(s.Algo))
	}
	s.Sig = bytes.Clone(b[sigHeaderLen:])
	return s, nil
}

// Marshal encodes the signature with its 9-byte header. It panics if the
// signature does not fit the 16-bit size field, which no RSA or ECDSA key
// this project creates can produce.
func (s *Signature) Marshal() []byte {
	if len(s.Sig) > 0xffff {
		panic("label: signature longer than 65535 bytes")
	}
	b := make([]byte, sigHeaderLen, sigHeaderLen+len(s.Sig))
	b[0] = byte(s.Type)
	b[1] = s.Version
	b[2] = byte(s.Algo)
	binary.BigEndian.PutUint32(b[3:7], s.KeyID)
	binary.BigEndian.PutUint16(b[7:9], uint16(len(s.Sig)))
	return append(b, s.Sig...)
}

// SignatureV1 is a legacy version 1 signature (lib/digsig.c). It is parsed
// so that tools can report it, never created.
type SignatureV1 struct {
	Timestamp  uint32 // native byte order of the signer; kept as read (little-endian)
	PubKeyAlgo uint8  // 0 = RSA
	Algo       digest.Algo
	KeyID      [8]byte
	MPI        []byte // the RSA signature bytes
	raw        []byte
}

// v1HeaderLen is type + the 16-byte packed header of a v1 signature.
const v1HeaderLen = 1 + 16

// ParseSignatureV1 parses a legacy version 1 signature: the packed header,
// one MPI (16-bit big-endian bit count and the bytes).
func ParseSignatureV1(b []byte) (*SignatureV1, error) {
	if len(b) < v1HeaderLen+2 {
		return nil, malformed("v1 signature of %d bytes is shorter than its header", len(b))
	}
	if b[0] != byte(TypeDigsig) || b[1] != 1 {
		return nil, malformed("not a v1 signature")
	}
	s := &SignatureV1{
		Timestamp:  binary.LittleEndian.Uint32(b[2:6]),
		PubKeyAlgo: b[6],
	}
	switch b[7] { // the v1 hash enum: 0 sha1, 1 sha256
	case 0:
		s.Algo = digest.SHA1
	case 1:
		s.Algo = digest.SHA256
	default:
		return nil, unsupported("v1 signature hash id %d", b[7])
	}
	copy(s.KeyID[:], b[8:16])
	if b[16] != 1 {
		return nil, malformed("v1 signature with %d MPIs, want 1", b[16])
	}
	bits := int(binary.BigEndian.Uint16(b[17:19]))
	n := (bits + 7) / 8
	if n == 0 || len(b)-19 != n {
		return nil, malformed("v1 signature MPI of %d bits, %d bytes follow", bits, len(b)-19)
	}
	s.MPI = bytes.Clone(b[19:])
	s.raw = bytes.Clone(b)
	return s, nil
}

// Marshal returns the bytes the signature was parsed from.
func (s *SignatureV1) Marshal() []byte { return bytes.Clone(s.raw) }
