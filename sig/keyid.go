// SPDX-License-Identifier: Apache-2.0

// Package sig holds the signing side of labels: private keys and
// certificates (load, generate), the 4-byte IMA keyid, and signing and
// verifying file digests the way the kernel and evmctl do (RSA PKCS#1 v1.5
// with the digest's DigestInfo, ECDSA over the digest in ASN.1 DER).
//
// Signing works with any crypto.Signer, so a key held in a TPM signs in the
// same format as a key in a PEM file.
package sig

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
)

// subjectKeyBits returns the contents of the subjectPublicKey BIT STRING of
// pub's SubjectPublicKeyInfo: the DER RSAPublicKey for RSA, the uncompressed
// point for EC.
func subjectKeyBits(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	return spki.PublicKey.Bytes, nil
}

// SubjectKeyID returns the RFC 5280 method-1 key identifier of pub: the
// SHA-1 of its subjectPublicKey bit string. OpenSSL's
// subjectKeyIdentifier=hash gives the same bytes.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	bits, err := subjectKeyBits(pub)
	if err != nil {
		return nil, fmt.Errorf("computing key id: %w", err)
	}
	sum := sha1.Sum(bits)
	return sum[:], nil
}

// KeyID returns the 4-byte IMA keyid of pub as evmctl computes it by
// default: the last four bytes of SubjectKeyID, read big-endian.
func KeyID(pub crypto.PublicKey) (uint32, error) {
	skid, err := SubjectKeyID(pub)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(skid[16:20]), nil
}

// CertKeyIDs returns the keyids under which the kernel and evmctl find cert:
// the last four bytes of its SubjectKeyIdentifier extension when it has
// one, and the keyid computed from its public key.
func CertKeyIDs(cert *x509.Certificate) []uint32 {
	var ids []uint32
	if n := len(cert.SubjectKeyId); n >= 4 {
		ids = append(ids, binary.BigEndian.Uint32(cert.SubjectKeyId[n-4:]))
	}
	if id, err := KeyID(cert.PublicKey); err == nil && (len(ids) == 0 || ids[0] != id) {
		ids = append(ids, id)
	}
	return ids
}
