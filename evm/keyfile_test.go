// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// testKDF keeps tests fast; real files use DefaultKDF.
var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func sealTest(t testing.TB, key []byte) *KeyFile {
	t.Helper()
	k, err := SealPassphrase(key, []byte("correct horse"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyFileRoundTrip(t *testing.T) {
	key, err := NewKey()
	if err != nil || len(key) != KeySize {
		t.Fatalf("NewKey = %x, %v", key, err)
	}
	b := sealTest(t, key).Marshal()
	if bytes.Contains(b, key) {
		t.Fatal("key file contains the key in clear")
	}
	if !strings.HasPrefix(string(b), "intact-evm-key v1\nkind passphrase\nkdf argon2id t=1 m=64 p=1\nsalt ") {
		t.Errorf("key file starts %q", b[:60])
	}
	k, err := ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Open([]byte("correct horse"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Open = %x, %v; want %x", got, err, key)
	}
	if _, err := k.Open([]byte("correct horsf")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := SealPassphrase(key, nil, testKDF); !errors.Is(err, ErrEmptyPassphrase) {
		t.Errorf("empty passphrase: %v", err)
	}
	if _, err := SealPassphrase(key, []byte("p"), KDFParams{Time: 1, MemoryKiB: 1, Threads: 1}); err == nil {
		t.Error("argon2id with 1 KiB accepted")
	}
}

// TestKeyFileHeaderIsAuthenticated changes every byte of the file: each
// change is refused by the parser or makes opening fail; none yields a key.
func TestKeyFileHeaderIsAuthenticated(t *testing.T) {
	b := sealTest(t, bytes.Repeat([]byte{7}, KeySize)).Marshal()
	for i := range b {
		for _, x := range []byte{0x01, 0x20} {
			m := bytes.Clone(b)
			m[i] ^= x
			k, err := ParseKeyFile(m)
			if err != nil {
				if !errors.Is(err, ErrBadKeyFile) {
					t.Fatalf("byte %d: error %v does not wrap ErrBadKeyFile", i, err)
				}
				continue
			}
			if key, err := k.Open([]byte("correct horse")); err == nil {
				t.Fatalf("byte %d ^ %#x: opened to %x", i, x, key)
			}
		}
	}
	for i := range len(b) {
		if _, err := ParseKeyFile(b[:i]); err == nil {
			t.Fatalf("prefix of %d bytes parsed", i)
		}
	}
}

func TestParseKeyFileRejects(t *testing.T) {
	good := string(sealTest(t, []byte("k")).Marshal())
	lines := strings.Split(good, "\n")
	swap := func(i int, s string) string {
		l := append([]string(nil), lines...)
		l[i] = s
		return strings.Join(l, "\n")
	}
	for name, s := range map[string]string{
		"wrong magic":     swap(0, "intact-evm-key v2"),
		"unknown kind":    swap(1, "kind tpm-wrapped"),
		"huge memory":     swap(2, "kdf argon2id t=1 m=4294967295 p=1"),
		"zero passes":     swap(2, "kdf argon2id t=0 m=64 p=1"),
		"zero lanes":      swap(2, "kdf argon2id t=1 m=64 p=0"),
		"300 lanes":       swap(2, "kdf argon2id t=1 m=4096 p=300"),
		"scrypt":          swap(2, "kdf scrypt t=1 m=64 p=1"),
		"leading zero":    swap(2, "kdf argon2id t=01 m=64 p=1"),
		"short salt":      swap(3, "salt AAAA"),
		"padded base64":   swap(3, lines[3]+"=="),
		"aes":             swap(4, "aead aes-gcm"),
		"extra line":      good + "x 1\n",
		"no final ln":     strings.TrimSuffix(good, "\n"),
		"crlf":            strings.ReplaceAll(good, "\n", "\r\n"),
		"empty":           "",
		"short cipher":    swap(6, "ciphertext AAAA"),
		"fields reversed": swap(3, strings.Replace(lines[5], "nonce", "salt", 1)),
	} {
		if _, err := ParseKeyFile([]byte(s)); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: ParseKeyFile error = %v, want ErrBadKeyFile", name, err)
		}
	}
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add(sealTest(f, []byte("0123456789abcdef0123456789abcdef")).Marshal())
	f.Add([]byte("intact-evm-key v1\nkind tpm-sealed\nsealed SVRTSwEBAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeyFile(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Marshal(), b) {
			t.Fatalf("accepted a non-canonical file")
		}
		if k.KDF.MemoryKiB > 1<<12 || k.KDF.Time > 4 {
			return // valid but too slow to open in a fuzz loop
		}
		k.Open([]byte("x"))
	})
}
