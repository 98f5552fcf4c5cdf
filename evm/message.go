// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"crypto/hmac"
	"crypto/sha1"
	"errors"
	"fmt"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
)

// UUIDSize is the size of a file-system UUID (the kernel's s_uuid).
const UUIDSize = 16

// Input is what security.evm covers for one file, as read from it.
type Input struct {
	// Xattrs maps protected xattr names (security.*) to their raw stored
	// values; absent xattrs are missing from the map. Names the Config
	// does not protect are ignored.
	Xattrs map[string][]byte
	// Misc is the inode metadata. For portable signatures ino and
	// generation are ignored.
	Misc Misc
	// UUID is the 16-byte file-system UUID, or nil when the checking
	// kernel leaves it out (CONFIG_EVM_ATTR_FSUUID=n; evmctl -u). Portable
	// signatures never include it.
	UUID []byte
}

// ErrNoIMA is returned for a portable signature over a file without
// security.ima: the kernel refuses those (EPERM).
var ErrNoIMA = errors.New("evm: portable signature needs security.ima")

// Message returns the bytes that a security.evm value of type t covers:
// the protected xattr values in the kernel's order, h_misc in layout l, and
// the file-system UUID for types 0x02 and 0x03. Layout zero is Layout64.
func (c Config) Message(t label.Type, in Input, l Layout) ([]byte, error) {
	portable := false
	switch t {
	case label.TypeHMAC, label.TypeDigsig:
	case label.TypePortableDigsig:
		portable = true
		if _, ok := in.Xattrs[XattrIMA]; !ok {
			return nil, ErrNoIMA
		}
	default:
		return nil, fmt.Errorf("evm: %w: %s is not a security.evm type", label.ErrUnsupported, t)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if in.UUID != nil && len(in.UUID) != UUIDSize && !portable {
		return nil, fmt.Errorf("evm: file-system uuid of %d bytes, want %d", len(in.UUID), UUIDSize)
	}
	var msg []byte
	for _, n := range c.Protected(portable) {
		if v, ok := in.Xattrs[n]; ok {
			msg = append(msg, v...)
		}
	}
	m := in.Misc
	if portable {
		m = m.Portable()
	}
	msg = append(msg, m.Marshal(l)...)
	if !portable {
		msg = append(msg, in.UUID...)
	}
	return msg, nil
}

// MaxKeySize is the size of the kernel's EVM key buffer: keys are
// zero-padded to it and longer keys do not exist.
const MaxKeySize = 128

// HMACSize is the size of an EVM HMAC (HMAC-SHA1).
const HMACSize = sha1.Size

// ErrKeySize is returned for an EVM key that is empty or longer than
// MaxKeySize.
var ErrKeySize = errors.New("evm: hmac key must be 1 to 128 bytes")

// HMAC returns HMAC-SHA1 of msg keyed the way the kernel keys it: the key
// zero-padded to 128 bytes (which, being longer than SHA-1's block, HMAC
// then hashes). That is not the same as HMAC under the unpadded key.
func HMAC(key, msg []byte) ([]byte, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, ErrKeySize
	}
	padded := make([]byte, MaxKeySize)
	copy(padded, key)
	h := hmac.New(sha1.New, padded)
	h.Write(msg)
	return h.Sum(nil), nil
}

// Digest returns the digest that an EVM signature with hash algorithm algo
// signs: the algorithm applied to msg.
func Digest(algo digest.Algo, msg []byte) ([]byte, error) {
	h, ok := algo.CryptoHash()
	if !ok {
		return nil, fmt.Errorf("evm: %w: hash algorithm %s", label.ErrUnsupported, algo)
	}
	w := h.New()
	w.Write(msg)
	return w.Sum(nil), nil
}
