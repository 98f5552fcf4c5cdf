// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func TestKernelBlobRoundTrip(t *testing.T) {
	key, mk := bytes.Repeat([]byte{0x5a}, 32), []byte("master key bytes")
	blob, err := SealKernelBlob(key, mk, "user:kmk")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(blob, "default user:kmk 32 ") || len(blob) != len("default user:kmk 32 ")+2*(16+1+32+32) {
		t.Fatalf("blob %q", blob)
	}
	got, err := OpenKernelBlob(blob, mk)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("OpenKernelBlob = %x, %v", got, err)
	}
	if _, err := OpenKernelBlob(blob, []byte("another master")); !errors.Is(err, ErrBadKernelBlob) {
		t.Errorf("another master key: %v", err)
	}
	for i := len("default user:kmk 32 "); i < len(blob); i++ {
		m := []byte(blob)
		if m[i] = '0'; blob[i] == '0' {
			m[i] = '1'
		}
		if _, err := OpenKernelBlob(string(m), mk); err == nil {
			t.Fatalf("hex digit %d changed: accepted", i)
		}
	}
	for _, bad := range []string{"", "default user:kmk 32", "enc32 user:kmk 32 00", "default trusted:kmk 32 00", "default user:kmk 019 00", "default user:kmk 19 00"} {
		if _, err := OpenKernelBlob(bad, mk); !errors.Is(err, ErrBadKernelBlob) {
			t.Errorf("OpenKernelBlob(%q): %v", bad, err)
		}
	}
	if _, err := SealKernelBlob(key[:19], mk, "user:kmk"); err == nil {
		t.Error("19-byte key sealed")
	}
	if _, err := SealKernelBlob(key, mk, "trusted:kmk"); err == nil {
		t.Error("trusted master key accepted without its plaintext")
	}
}

// TestKernelBlobWithKeyctl: the running kernel's encrypted key type loads
// a blob intact made, and intact opens blobs the kernel made. A kernel
// blob of a 20-byte key has 12 bytes of zero padding, which only decrypt
// to zero under the right key derivation. Runs keyctl in a new session
// keyring, so nothing is left behind.
func TestKernelBlobWithKeyctl(t *testing.T) {
	testenv.RequireTool(t, "keyctl")
	dir := t.TempDir()
	mk := []byte("0123456789abcdef0123456789abcdef")
	key := bytes.Repeat([]byte{0xc3}, 32)
	blob, err := SealKernelBlob(key, mk, "user:intact-test-kmk")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "kmk"), mk, 0o600)
	os.WriteFile(filepath.Join(dir, "blob"), []byte(blob), 0o600)
	script := `set -e
cd "$1"
keyctl padd user intact-test-kmk @s < kmk >/dev/null
id=$(keyctl add encrypted intact-test-evm "load $(cat blob)" @s)
keyctl pipe "$id" > reprinted
id=$(keyctl add encrypted intact-test-new "new default user:intact-test-kmk 20" @s)
keyctl pipe "$id" > kernel20
`
	out, err := exec.Command("keyctl", "session", "-", "sh", "-c", script, "sh", dir).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such device") && !testenv.InCI() {
			t.Skipf("kernel without the encrypted key type: %s", out)
		}
		t.Fatalf("keyctl: %v\n%s", err, out)
	}
	reprinted, _ := os.ReadFile(filepath.Join(dir, "reprinted"))
	if got, err := OpenKernelBlob(string(reprinted), mk); err != nil || !bytes.Equal(got, key) {
		t.Errorf("the kernel's copy of intact's blob opens to %x, %v; want %x", got, err, key)
	}
	k20, _ := os.ReadFile(filepath.Join(dir, "kernel20"))
	if got, err := OpenKernelBlob(string(k20), mk); err != nil || len(got) != 20 {
		t.Errorf("a kernel-made blob: %x, %v", got, err)
	}
}

// FuzzOpenKernelBlob: any text either fails or opens to a key of a valid
// size; never a panic.
func FuzzOpenKernelBlob(f *testing.F) {
	mk := []byte("fuzz master key")
	blob, _ := SealKernelBlob(bytes.Repeat([]byte{1}, 32), mk, "user:kmk")
	f.Add(blob)
	f.Add("default user:kmk 20 00")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := OpenKernelBlob(s, mk)
		if err == nil && (len(k) < kernelKeyMin || len(k) > kernelKeyMax) {
			t.Fatalf("opened to a %d-byte key", len(k))
		}
	})
}
