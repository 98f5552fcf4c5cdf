// SPDX-License-Identifier: Apache-2.0

// Package label encodes and parses the integrity labels that Linux IMA and
// EVM keep in extended attributes: security.ima (file content digests and
// signatures) and the signature header that security.evm shares with it.
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
	"crypto"
	"fmt"
	"strings"
)

// HashAlgo is the kernel's enum hash_algo (include/uapi/linux/hash_info.h),
// the algorithm byte of type 0x04 labels and of signature headers.
type HashAlgo uint8

// The kernel's hash algorithm ids.
const (
	MD4         HashAlgo = 0
	MD5         HashAlgo = 1
	SHA1        HashAlgo = 2
	RIPEMD160   HashAlgo = 3
	SHA256      HashAlgo = 4
	SHA384      HashAlgo = 5
	SHA512      HashAlgo = 6
	SHA224      HashAlgo = 7
	RIPEMD128   HashAlgo = 8
	RIPEMD256   HashAlgo = 9
	RIPEMD320   HashAlgo = 10
	WP256       HashAlgo = 11
	WP384       HashAlgo = 12
	WP512       HashAlgo = 13
	TGR128      HashAlgo = 14
	TGR160      HashAlgo = 15
	TGR192      HashAlgo = 16
	SM3         HashAlgo = 17
	Streebog256 HashAlgo = 18
	Streebog512 HashAlgo = 19
	SHA3_256    HashAlgo = 20
	SHA3_384    HashAlgo = 21
	SHA3_512    HashAlgo = 22

	// hashAlgoLast is HASH_ALGO__LAST: ids at or above it are unknown to
	// the kernel, which rejects signatures that carry them.
	hashAlgoLast HashAlgo = 23
)

type algoInfo struct {
	name string // the kernel's name, as in ima_hash= and d-ng fields
	size int    // digest size in bytes
	hash crypto.Hash
}

var algos = [hashAlgoLast]algoInfo{
	MD4:         {"md4", 16, crypto.MD4},
	MD5:         {"md5", 16, crypto.MD5},
	SHA1:        {"sha1", 20, crypto.SHA1},
	RIPEMD160:   {"rmd160", 20, crypto.RIPEMD160},
	SHA256:      {"sha256", 32, crypto.SHA256},
	SHA384:      {"sha384", 48, crypto.SHA384},
	SHA512:      {"sha512", 64, crypto.SHA512},
	SHA224:      {"sha224", 28, crypto.SHA224},
	RIPEMD128:   {"rmd128", 16, 0},
	RIPEMD256:   {"rmd256", 32, 0},
	RIPEMD320:   {"rmd320", 40, 0},
	WP256:       {"wp256", 32, 0},
	WP384:       {"wp384", 48, 0},
	WP512:       {"wp512", 64, 0},
	TGR128:      {"tgr128", 16, 0},
	TGR160:      {"tgr160", 20, 0},
	TGR192:      {"tgr192", 24, 0},
	SM3:         {"sm3", 32, 0},
	Streebog256: {"streebog256", 32, 0},
	Streebog512: {"streebog512", 64, 0},
	SHA3_256:    {"sha3-256", 32, crypto.SHA3_256},
	SHA3_384:    {"sha3-384", 48, crypto.SHA3_384},
	SHA3_512:    {"sha3-512", 64, crypto.SHA3_512},
}

// Known reports whether a is an algorithm id the kernel defines.
func (a HashAlgo) Known() bool { return a < hashAlgoLast }

// String returns the kernel's name of the algorithm, or "algo(N)".
func (a HashAlgo) String() string {
	if a.Known() {
		return algos[a].name
	}
	return fmt.Sprintf("algo(%d)", uint8(a))
}

// Size returns the digest size in bytes, or 0 for an unknown id.
func (a HashAlgo) Size() int {
	if a.Known() {
		return algos[a].size
	}
	return 0
}

// CryptoHash returns the Go crypto.Hash for a, and false when Go has no
// implementation of it (or it is linked out of the binary). Only hashes
// that this package can verify are reported available.
func (a HashAlgo) CryptoHash() (crypto.Hash, bool) {
	if !a.Known() {
		return 0, false
	}
	h := algos[a].hash
	if h == 0 || !h.Available() {
		return 0, false
	}
	return h, true
}

// ParseHashAlgo returns the id for a kernel or evmctl algorithm name
// ("sha256", "sha3-256", "sm3"; case-insensitive).
func ParseHashAlgo(name string) (HashAlgo, error) {
	n := strings.ToLower(name)
	if n == "md_gost12_256" {
		return Streebog256, nil
	}
	if n == "md_gost12_512" {
		return Streebog512, nil
	}
	for i := range algos {
		if algos[i].name == n {
			return HashAlgo(i), nil
		}
	}
	return 0, fmt.Errorf("unknown hash algorithm %q", name)
}

// HashAlgoFor returns the kernel id of a Go crypto.Hash.
func HashAlgoFor(h crypto.Hash) (HashAlgo, bool) {
	for i := range algos {
		if algos[i].hash == h && h != 0 {
			return HashAlgo(i), true
		}
	}
	return 0, false
}
