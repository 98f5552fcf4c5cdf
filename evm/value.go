// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"crypto/hmac"
	"fmt"

	"github.com/intactsec/intact/label"
)

// Value is a parsed security.evm value: an HMAC (type 0x02) or a full
// (0x03) or portable (0x05) signature.
type Value struct {
	Type label.Type
	HMAC []byte           // type 0x02: the 20-byte HMAC-SHA1
	Sig  *label.Signature // types 0x03 and 0x05: version 2 header + signature
}

// Portable reports whether v is a portable signature.
func (v *Value) Portable() bool { return v.Type == label.TypePortableDigsig }

// Parse parses a security.evm value with the kernel's checks: an HMAC is
// exactly 21 bytes; a signature has a complete version 2 header whose size
// field matches the bytes that follow. Malformed values wrap
// label.ErrMalformed; well-formed ones this package cannot check (signature
// version 1 or 3, unknown hash algorithm) wrap label.ErrUnsupported. The
// result never aliases b.
func Parse(b []byte) (*Value, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty security.evm", label.ErrMalformed)
	}
	switch t := label.Type(b[0]); t {
	case label.TypeHMAC:
		if len(b) != 1+HMACSize {
			return nil, fmt.Errorf("%w: hmac of %d bytes, want %d", label.ErrMalformed, len(b)-1, HMACSize)
		}
		return &Value{Type: t, HMAC: bytes.Clone(b[1:])}, nil
	case label.TypeDigsig, label.TypePortableDigsig:
		if len(b) >= 2 && b[1] != 2 {
			return nil, fmt.Errorf("%w: evm %s version %d", label.ErrUnsupported, t, b[1])
		}
		s, err := label.ParseSignature(b)
		if err != nil {
			return nil, err
		}
		return &Value{Type: t, Sig: s}, nil
	case label.TypeDigest, label.TypeDigestNG, label.TypeVerityDigsig:
		return nil, fmt.Errorf("%w: %s is an ima type, not valid in security.evm", label.ErrMalformed, t)
	default:
		return nil, fmt.Errorf("%w: security.evm type 0x%02x", label.ErrUnsupported, b[0])
	}
}

// Marshal encodes v in the kernel's format.
func (v *Value) Marshal() []byte {
	if v.Sig != nil {
		s := *v.Sig
		s.Type = v.Type
		return s.Marshal()
	}
	return append([]byte{byte(label.TypeHMAC)}, v.HMAC...)
}

// NewHMAC computes the type 0x02 value for msg (see [Config.Message]).
func NewHMAC(key, msg []byte) (*Value, error) {
	mac, err := HMAC(key, msg)
	if err != nil {
		return nil, err
	}
	return &Value{Type: label.TypeHMAC, HMAC: mac}, nil
}

// CheckHMAC reports whether v is an HMAC value that matches msg under key,
// in constant time.
func (v *Value) CheckHMAC(key, msg []byte) (bool, error) {
	if v.Type != label.TypeHMAC {
		return false, fmt.Errorf("evm: %s is not an hmac", v.Type)
	}
	mac, err := HMAC(key, msg)
	if err != nil {
		return false, err
	}
	return hmac.Equal(mac, v.HMAC), nil
}
