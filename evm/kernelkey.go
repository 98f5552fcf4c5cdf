// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The kernel's "encrypted" key type (security/keys/encrypted-keys) holds
// the EVM key as the key "evm-key". Its datablob, what `keyctl print`
// shows and `keyctl add encrypted evm-key "load BLOB" @u` takes, is
//
//	default <master-desc> <datalen> <hex(iv[16] || 0x00 || ciphertext || hmac[32])>
//
// where the ciphertext is AES-256-CBC of the key zero-padded to a block
// multiple, under SHA-256("ENC_KEY\0" || master key, padded), and the hmac
// is HMAC-SHA256 under SHA-256("AUTH_KEY\0" || master key) of
// "default\0" master-desc "\0" datalen "\0" iv "\0" ciphertext. The master
// key is a "user" key (its raw payload) named by master-desc "user:NAME".

// Limits of the encrypted key type's decrypted data.
const (
	kernelKeyMin = 20
	kernelKeyMax = 128
)

// ErrBadKernelBlob is returned for a datablob that is malformed or does
// not authenticate under the master key.
var ErrBadKernelBlob = errors.New("not a valid encrypted-key datablob for this master key")

// derivedKernelKey is the kernel's get_derived_key: SHA-256 over the label,
// its NUL, the master key, in a zeroed buffer of max(9+len(mk), 32) bytes.
func derivedKernelKey(label string, mk []byte) []byte {
	n := max(len("AUTH_KEY")+1+len(mk), sha256.Size)
	buf := make([]byte, n)
	copy(buf, label)
	copy(buf[len(label)+1:], mk)
	s := sha256.Sum256(buf)
	return s[:]
}

func kernelBlobMAC(mk []byte, desc, datalen string, iv, ct []byte) []byte {
	m := hmac.New(sha256.New, derivedKernelKey("AUTH_KEY", mk))
	for _, s := range []string{"default", desc, datalen} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write(iv)
	m.Write([]byte{0})
	m.Write(ct)
	return m.Sum(nil)
}

func checkMasterDesc(desc string) error {
	name, ok := strings.CutPrefix(desc, "user:")
	if !ok || name == "" || strings.ContainsAny(name, " \t\n\x00") {
		return fmt.Errorf("master key %q: want \"user:NAME\"", desc)
	}
	return nil
}

// SealKernelBlob returns the datablob under which the kernel's encrypted
// key type loads key, encrypted under the user key masterKey described as
// masterDesc ("user:kmk").
func SealKernelBlob(key, masterKey []byte, masterDesc string) (string, error) {
	if len(key) < kernelKeyMin || len(key) > kernelKeyMax {
		return "", fmt.Errorf("evm key of %d bytes: the encrypted key type takes %d to %d", len(key), kernelKeyMin, kernelKeyMax)
	}
	if len(masterKey) == 0 {
		return "", errors.New("empty master key")
	}
	if err := checkMasterDesc(masterDesc); err != nil {
		return "", err
	}
	iv := make([]byte, aes.BlockSize)
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return "", err
	}
	block, _ := aes.NewCipher(derivedKernelKey("ENC_KEY", masterKey))
	ct := make([]byte, (len(key)+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	copy(ct, key)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	datalen := strconv.Itoa(len(key))
	mac := kernelBlobMAC(masterKey, masterDesc, datalen, iv, ct)
	raw := append(append(append(iv, 0), ct...), mac...)
	return fmt.Sprintf("default %s %s %s", masterDesc, datalen, hex.EncodeToString(raw)), nil
}

// OpenKernelBlob checks a "default"-format datablob under masterKey and
// returns the key it holds.
func OpenKernelBlob(blob string, masterKey []byte) ([]byte, error) {
	f := strings.Split(strings.TrimSuffix(blob, "\n"), " ")
	if len(f) != 4 || f[0] != "default" {
		return nil, fmt.Errorf("%w: want \"default user:NAME LEN HEX\"", ErrBadKernelBlob)
	}
	if err := checkMasterDesc(f[1]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKernelBlob, err)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n < kernelKeyMin || n > kernelKeyMax || strconv.Itoa(n) != f[2] {
		return nil, fmt.Errorf("%w: data length %q", ErrBadKernelBlob, f[2])
	}
	ctLen := (n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	raw, err := hex.DecodeString(f[3])
	if err != nil || len(raw) != aes.BlockSize+1+ctLen+sha256.Size || raw[aes.BlockSize] != 0 {
		return nil, fmt.Errorf("%w: hex part is not iv, 0, %d bytes, hmac", ErrBadKernelBlob, ctLen)
	}
	iv, ct, mac := raw[:aes.BlockSize], raw[aes.BlockSize+1:aes.BlockSize+1+ctLen], raw[aes.BlockSize+1+ctLen:]
	if !hmac.Equal(mac, kernelBlobMAC(masterKey, f[1], f[2], iv, ct)) {
		return nil, fmt.Errorf("%w: hmac does not match (another master key?)", ErrBadKernelBlob)
	}
	block, _ := aes.NewCipher(derivedKernelKey("ENC_KEY", masterKey))
	pt := make([]byte, ctLen)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	for _, b := range pt[n:] {
		if b != 0 {
			return nil, fmt.Errorf("%w: padding is not zero", ErrBadKernelBlob)
		}
	}
	return pt[:n], nil
}
