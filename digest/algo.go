// SPDX-License-Identifier: Apache-2.0

// Package digest is the hash vocabulary every other package shares: the
// hash algorithm ids ([Algo]), PCR values by bank ([PCRs]), and file
// content digests ([File]).
//
// # Algorithm ids
//
// [Algo] is the kernel's enum hash_algo (include/uapi/linux/hash_info.h),
// the algorithm byte of security.ima labels and signature headers. Its
// names ([Algo.String], [ParseAlgo]) are the kernel's, which are also the
// names IMA's ascii lists, evmctl, tpm2-tools and the attestation protocol
// use ("sha1", "sha256", "sm3", ...). [Algo.CryptoHash] maps an id to the Go
// implementation where there is one.
//
// # PCR values
//
// [PCRs] holds PCR values by bank and PCR index. It is the one type for
// PCR values in intact: measurement-list replay (mlog), boot event logs
// (eventlog), quote verification (quote), the attestation protocol
// (attest), the agent and the verifier, PCR files and TPM reads.
//
// Its banks are keyed by [Algo], not by crypto.Hash, because:
//   - an Algo names every bank a TPM, a PCR file or a log can hold,
//     including those Go has no implementation of (sm3): such a bank can
//     be carried, printed and rejected by name where it must be hashed,
//     instead of being unrepresentable;
//   - its names are the ones every format on the wire spells (tpm2_pcrread
//     and evmctl PCR files, ascii lists, the protocol's bank names), so no
//     second name table is needed;
//   - its digest size is known without an implementation, so values are
//     checked for length before anything is hashed.
//
// Where a bank must be hashed, [Algo.CryptoHash] gives the implementation
// and reports the banks that have none.
//
// # File digests
//
// [File] hashes everything a reader yields with a pooled read buffer: the
// content digest of every label, manifest entry and measurement.
package digest

import (
	"crypto"
	"fmt"
	"strings"
)

// Algo is the kernel's enum hash_algo (include/uapi/linux/hash_info.h):
// the algorithm byte of security.ima (type 0x04 labels and signature
// headers), so its numbering is a wire value and never changes.
type Algo uint8

// The kernel's hash algorithm ids.
const (
	MD4         Algo = 0
	MD5         Algo = 1
	SHA1        Algo = 2
	RIPEMD160   Algo = 3
	SHA256      Algo = 4
	SHA384      Algo = 5
	SHA512      Algo = 6
	SHA224      Algo = 7
	RIPEMD128   Algo = 8
	RIPEMD256   Algo = 9
	RIPEMD320   Algo = 10
	WP256       Algo = 11
	WP384       Algo = 12
	WP512       Algo = 13
	TGR128      Algo = 14
	TGR160      Algo = 15
	TGR192      Algo = 16
	SM3         Algo = 17
	Streebog256 Algo = 18
	Streebog512 Algo = 19
	SHA3_256    Algo = 20
	SHA3_384    Algo = 21
	SHA3_512    Algo = 22

	// algoLast is HASH_ALGO__LAST: ids at or above it are unknown to
	// the kernel, which rejects signatures that carry them.
	algoLast Algo = 23
)

type algoInfo struct {
	name string // the kernel's name, as in ima_hash= and d-ng fields
	size int    // digest size in bytes
	hash crypto.Hash
}

var algos = [algoLast]algoInfo{
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
func (a Algo) Known() bool { return a < algoLast }

// String returns the kernel's name of the algorithm, or "algo(N)".
func (a Algo) String() string {
	if a.Known() {
		return algos[a].name
	}
	return fmt.Sprintf("algo(%d)", uint8(a))
}

// Size returns the digest size in bytes, or 0 for an unknown id.
func (a Algo) Size() int {
	if a.Known() {
		return algos[a].size
	}
	return 0
}

// CryptoHash returns the Go crypto.Hash for a, and false when Go has no
// implementation of it (or it is linked out of the binary): only
// algorithms this program can compute are reported available.
func (a Algo) CryptoHash() (crypto.Hash, bool) {
	if !a.Known() {
		return 0, false
	}
	h := algos[a].hash
	if h == 0 || !h.Available() {
		return 0, false
	}
	return h, true
}

// ParseAlgo returns the id for a kernel or evmctl algorithm name
// ("sha256", "sha3-256", "sm3"; case-insensitive).
func ParseAlgo(name string) (Algo, error) {
	n := strings.ToLower(name)
	if n == "md_gost12_256" {
		return Streebog256, nil
	}
	if n == "md_gost12_512" {
		return Streebog512, nil
	}
	for i := range algos {
		if algos[i].name == n {
			return Algo(i), nil
		}
	}
	return 0, fmt.Errorf("unknown hash algorithm %q", name)
}

// AlgoFor returns the kernel id of a Go crypto.Hash.
func AlgoFor(h crypto.Hash) (Algo, bool) {
	for i := range algos {
		if algos[i].hash == h && h != 0 {
			return Algo(i), true
		}
	}
	return 0, false
}
