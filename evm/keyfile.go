// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// An EVM key file holds the HMAC key, never in clear. It is text, one
// "name value" line per field in a fixed order, parsed strictly (a file is
// accepted only in its one canonical encoding):
//
//	intact-evm-key v1
//	kind passphrase
//	kdf argon2id t=3 m=65536 p=4
//	salt <16 bytes, base64 without padding>
//	aead xchacha20poly1305
//	nonce <24 bytes>
//	ciphertext <the key, sealed>
//
// For kind passphrase the key is sealed with XChaCha20-Poly1305 under
// argon2id(passphrase, salt) and every byte before the ciphertext line is
// the associated data, so no header field can be changed unnoticed. Other
// kinds (a TPM-sealed key) get their own field list in keyKinds.

const keyFileMagic = "intact-evm-key v1"

// Kind says how the key in a key file is protected.
type Kind string

// KindPassphrase: wrapped under a key derived from a passphrase.
const KindPassphrase Kind = "passphrase"

// keyKinds lists, per kind, the fields that follow the kind line, in order.
// A new kind adds its list here and its cases in decodeFields and Marshal.
var keyKinds = map[Kind][]string{
	KindPassphrase: {"kdf", "salt", "aead", "nonce", "ciphertext"},
	KindTPMSealed:  {"sealed"},
}

// KeySize is the size of the EVM keys intact creates.
const KeySize = 32

// KDFParams are argon2id's cost parameters, stored in the key file.
type KDFParams struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DefaultKDF is the argon2id cost for new key files: 3 passes over 64 MiB,
// 4 lanes (a passphrase try costs a fraction of a second and 64 MiB).
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Limits that a parsed key file must respect: a crafted file must not make
// intact spend unbounded memory or time before the passphrase is checked.
const (
	maxKDFTime    = 64
	maxKDFMemory  = 4 << 20 // KiB: 4 GiB
	maxKDFThreads = 64
	saltSize      = 16
)

func (p KDFParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxKDFTime:
		return fmt.Errorf("argon2id passes %d out of range 1-%d", p.Time, maxKDFTime)
	case p.Threads < 1 || p.Threads > maxKDFThreads:
		return fmt.Errorf("argon2id lanes %d out of range 1-%d", p.Threads, maxKDFThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemory:
		return fmt.Errorf("argon2id memory %d KiB out of range %d-%d", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemory)
	}
	return nil
}

func (p KDFParams) String() string {
	return fmt.Sprintf("argon2id t=%d m=%d p=%d", p.Time, p.MemoryKiB, p.Threads)
}

// KeyFile is a parsed EVM key file.
type KeyFile struct {
	Kind Kind

	// Kind passphrase.
	KDF        KDFParams
	Salt       []byte
	Nonce      []byte
	Ciphertext []byte

	// Kind tpm-sealed (keyfile_tpm.go).
	Sealed []byte
}

// Errors of key files.
var (
	// ErrBadKeyFile: the file is not a well-formed EVM key file.
	ErrBadKeyFile = errors.New("not a valid evm key file")
	// ErrWrongPassphrase: the key does not open with the passphrase
	// (or the file was changed: the two cannot be told apart).
	ErrWrongPassphrase = errors.New("wrong passphrase (or the key file was modified)")
	// ErrEmptyPassphrase: a key is not wrapped under an empty passphrase.
	ErrEmptyPassphrase = errors.New("empty passphrase")
)

func badKeyFile(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadKeyFile}, args...)...)
}

// NewKey returns a new random EVM key of KeySize bytes.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, err
	}
	return k, nil
}

// SealPassphrase wraps key under passphrase with argon2id cost kdf.
func SealPassphrase(key, passphrase []byte, kdf KDFParams) (*KeyFile, error) {
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, ErrKeySize
	}
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if err := kdf.validate(); err != nil {
		return nil, err
	}
	k := &KeyFile{Kind: KindPassphrase, KDF: kdf, Salt: make([]byte, saltSize), Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	if _, err := io.ReadFull(rand.Reader, k.Salt); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rand.Reader, k.Nonce); err != nil {
		return nil, err
	}
	aead, err := k.aead(passphrase)
	if err != nil {
		return nil, err
	}
	k.Ciphertext = aead.Seal(nil, k.Nonce, key, k.header())
	return k, nil
}

// Open returns the key of a passphrase key file, or ErrWrongPassphrase.
func (k *KeyFile) Open(passphrase []byte) ([]byte, error) {
	if k.Kind != KindPassphrase {
		return nil, fmt.Errorf("evm key of kind %q is not opened with a passphrase", k.Kind)
	}
	if err := k.KDF.validate(); err != nil {
		return nil, badKeyFile("%v", err)
	}
	aead, err := k.aead(passphrase)
	if err != nil {
		return nil, err
	}
	key, err := aead.Open(nil, k.Nonce, k.Ciphertext, k.header())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, badKeyFile("wrapped key of %d bytes", len(key))
	}
	return key, nil
}

func (k *KeyFile) aead(passphrase []byte) (interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}, error) {
	wk := argon2.IDKey(passphrase, k.Salt, k.KDF.Time, k.KDF.MemoryKiB, k.KDF.Threads, chacha20poly1305.KeySize)
	return chacha20poly1305.NewX(wk)
}

var b64 = base64.RawStdEncoding.Strict()

// header is the encoding of every line before the ciphertext: the AEAD's
// associated data.
func (k *KeyFile) header() []byte {
	b := k.Marshal()
	return b[:bytes.LastIndex(b, []byte("\nciphertext "))+1]
}

// Marshal encodes the key file.
func (k *KeyFile) Marshal() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nkind %s\n", keyFileMagic, k.Kind)
	if k.Kind == KindPassphrase {
		fmt.Fprintf(&b, "kdf %s\nsalt %s\naead xchacha20poly1305\nnonce %s\nciphertext %s\n",
			k.KDF, b64.EncodeToString(k.Salt), b64.EncodeToString(k.Nonce), b64.EncodeToString(k.Ciphertext))
	}
	if k.Kind == KindTPMSealed {
		fmt.Fprintf(&b, "sealed %s\n", b64.EncodeToString(k.Sealed))
	}
	return []byte(b.String())
}

// maxKeyFile bounds the size of a key file that is parsed.
const maxKeyFile = 64 << 10

// ParseKeyFile parses an EVM key file strictly: the magic line, a known
// kind, exactly that kind's fields in order, each value canonical.
func ParseKeyFile(b []byte) (*KeyFile, error) {
	if len(b) > maxKeyFile {
		return nil, badKeyFile("%d bytes is too large", len(b))
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		return nil, badKeyFile("does not end with a newline")
	}
	lines := strings.Split(string(b[:len(b)-1]), "\n")
	if lines[0] != keyFileMagic {
		return nil, badKeyFile("first line is not %q", keyFileMagic)
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "kind ") {
		return nil, badKeyFile("line 2 is not the kind")
	}
	kind := Kind(strings.TrimPrefix(lines[1], "kind "))
	names, ok := keyKinds[kind]
	if !ok {
		return nil, badKeyFile("unknown kind %q", kind)
	}
	if len(lines) != 2+len(names) {
		return nil, badKeyFile("%d lines, kind %s has %d", len(lines), kind, 2+len(names))
	}
	fields := map[string]string{}
	for i, name := range names {
		v, ok := strings.CutPrefix(lines[2+i], name+" ")
		if !ok {
			return nil, badKeyFile("line %d is not %q", 3+i, name)
		}
		fields[name] = v
	}
	k := &KeyFile{Kind: kind}
	if err := k.decodeFields(fields); err != nil {
		return nil, err
	}
	if !bytes.Equal(k.Marshal(), b) {
		return nil, badKeyFile("not in canonical form")
	}
	return k, nil
}

func (k *KeyFile) decodeFields(f map[string]string) error {
	if k.Kind == KindTPMSealed {
		return k.decodeSealed(f)
	}
	if k.Kind != KindPassphrase {
		return badKeyFile("kind %q has no decoder", k.Kind)
	}
	var err error
	if k.KDF, err = parseKDF(f["kdf"]); err != nil {
		return err
	}
	if f["aead"] != "xchacha20poly1305" {
		return badKeyFile("unknown aead %q", f["aead"])
	}
	for _, x := range []struct {
		name string
		dst  *[]byte
		size int
	}{{"salt", &k.Salt, saltSize}, {"nonce", &k.Nonce, chacha20poly1305.NonceSizeX}, {"ciphertext", &k.Ciphertext, 0}} {
		v, err := b64.DecodeString(f[x.name])
		if err != nil {
			return badKeyFile("%s: %v", x.name, err)
		}
		if x.size != 0 && len(v) != x.size {
			return badKeyFile("%s of %d bytes, want %d", x.name, len(v), x.size)
		}
		*x.dst = v
	}
	if n := len(k.Ciphertext) - chacha20poly1305.Overhead; n < 1 || n > MaxKeySize {
		return badKeyFile("ciphertext of %d bytes", len(k.Ciphertext))
	}
	return nil
}

func parseKDF(s string) (KDFParams, error) {
	var p KDFParams
	parts := strings.Split(s, " ")
	if len(parts) != 4 || parts[0] != "argon2id" {
		return p, badKeyFile("kdf %q is not \"argon2id t=N m=N p=N\"", s)
	}
	vals := make([]uint64, 3)
	for i, key := range []string{"t=", "m=", "p="} {
		v, ok := strings.CutPrefix(parts[1+i], key)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return p, badKeyFile("kdf parameter %q", parts[1+i])
		}
		vals[i] = n
	}
	if vals[2] > maxKDFThreads {
		return p, badKeyFile("argon2id lanes %d out of range", vals[2])
	}
	p = KDFParams{Time: uint32(vals[0]), MemoryKiB: uint32(vals[1]), Threads: uint8(vals[2])}
	if err := p.validate(); err != nil {
		return p, badKeyFile("%v", err)
	}
	return p, nil
}
