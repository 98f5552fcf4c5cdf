// SPDX-License-Identifier: Apache-2.0

package ear

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

var randReader = rand.Reader

// JWK is the public JSON Web Key (RFC 7517) of an ES256 signer.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

func coords(pub *ecdsa.PublicKey) (x, y []byte, err error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: want an ECDSA P-256 key", ErrKey)
	}
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(b) != 65 {
		return nil, nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return b[1:33], b[33:], nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of pub (base64url SHA-256),
// used as the kid of tokens it signs.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := coords(pub)
	if err != nil {
		return "", err
	}
	// The required members in lexicographic order, no whitespace.
	s := `{"crv":"P-256","kty":"EC","x":"` + b64.EncodeToString(x) + `","y":"` + b64.EncodeToString(y) + `"}`
	d := sha256.Sum256([]byte(s))
	return b64.EncodeToString(d[:]), nil
}

// PublicJWK returns pub as a JWK.
func PublicJWK(pub *ecdsa.PublicKey) (*JWK, error) {
	x, y, err := coords(pub)
	if err != nil {
		return nil, err
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	return &JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(x), Y: b64.EncodeToString(y), Kid: kid, Alg: "ES256", Use: "sig"}, nil
}

// PublicKey returns the key a JWK holds (EC P-256 only).
func (j *JWK) PublicKey() (*ecdsa.PublicKey, error) {
	if j.Kty != "EC" || j.Crv != "P-256" || (j.Alg != "" && j.Alg != "ES256") {
		return nil, fmt.Errorf("%w: kty %q crv %q alg %q", ErrKey, j.Kty, j.Crv, j.Alg)
	}
	x, err := b64.DecodeString(j.X)
	if err != nil || len(x) != 32 {
		return nil, fmt.Errorf("%w: x", ErrKey)
	}
	y, err := b64.DecodeString(j.Y)
	if err != nil || len(y) != 32 {
		return nil, fmt.Errorf("%w: y", ErrKey)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return pub, nil
}

// ParseJWK decodes a JWK and returns its public key.
func ParseJWK(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) > 4096 {
		return nil, fmt.Errorf("%w: jwk of %d bytes", ErrKey, len(b))
	}
	var j JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return j.PublicKey()
}
