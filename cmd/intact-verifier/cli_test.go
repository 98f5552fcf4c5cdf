// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/sig"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	secret, short := filepath.Join(dir, "secret"), filepath.Join(dir, "short")
	os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600)
	os.WriteFile(short, []byte("short\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "no command"},
		{[]string{"-h"}, 0, ""},
		{[]string{"serve"}, 2, "usage: serve"},
		{[]string{"serve", "--state", "x", "--interval", "1ms"}, 2, "too short"},
		{[]string{"agents"}, 2, "want a command"},
		{[]string{"--state", "/nonexistent", "agents", "list"}, 2, "no such file"},
		{[]string{"--token-file", "x", "agents", "list"}, 2, "give --state"},
		{[]string{"--bogus", "agents", "list"}, 2, "flag provided but not defined"},
		{[]string{"serve", "--state", "x", "--webhook", "http://h/"}, 2, "needs --webhook-secret"},
		{[]string{"serve", "--state", "x", "--webhook", "ftp://h/", "--webhook-secret", secret}, 2, "want http(s)"},
		{[]string{"serve", "--state", "x", "--webhook", "https://h/", "--webhook-secret", short}, 2, "shorter than 16"},
		{[]string{"serve", "--state", "x", "--webhook", "http://h/", "--webhook-secret", secret}, 2, "plain http receiver not allowed"},
		{[]string{"serve", "--state", "x", "--webhook", "http://h/", "--webhook-secret", filepath.Join(dir, "none")}, 2, "no such file"},
		{[]string{"serve", "--state", "x", "--webhook-max-backoff", "1ms"}, 2, "too short"},
		{[]string{"serve", "--state", "x", "--history-heartbeat", "-1s"}, 2, "--history-heartbeat"},
		{[]string{"serve", "--state", "x", "--history", "0s"}, 2, "--history"},
		{[]string{"serve", "--state", "x"}, 2, "serve needs --ek-ca DIR"},
		{[]string{"serve", "--state", "x", "--ek-ca", filepath.Join(dir, "none")}, 2, "ek ca store: open"},
		{[]string{"serve", "--state", "x", "--ek-allow", secret}, 2, "is not an ek hash"},
		{[]string{"ek"}, 2, "usage: ek ADDR"},
	} {
		var out, errb bytes.Buffer
		code := run(&env{stdout: &out, stderr: &errb}, tc.args)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
		if code == 2 && !strings.HasPrefix(errb.String(), "intact-verifier: error: ") {
			t.Errorf("run(%q): stderr %q lacks the error prefix", tc.args, errb.String())
		}
	}
}

// The EAR key is made once (0600, P-256) and then reused; another kind
// of key in its place is refused.
func TestEARKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ear.key")
	k1, err := loadOrCreateEARKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ear.key: %v, %v", fi, err)
	}
	k2, err := loadOrCreateEARKey(p)
	if err != nil || !k2.Equal(k1) {
		t.Fatalf("second load: %v", err)
	}
	rsaKey, _ := sig.GenerateKey("rsa2048")
	b, _ := sig.MarshalPrivateKey(rsaKey)
	os.WriteFile(p, b, 0o600)
	if _, err := loadOrCreateEARKey(p); !errors.Is(err, ear.ErrKey) {
		t.Fatalf("rsa ear.key: %v", err)
	}
	p384, _ := sig.GenerateKey("ec-p384")
	b, _ = sig.MarshalPrivateKey(p384)
	os.WriteFile(p, b, 0o600)
	if _, err := loadOrCreateEARKey(p); !errors.Is(err, ear.ErrKey) {
		t.Fatalf("p-384 ear.key: %v", err)
	}
	os.WriteFile(p, []byte("junk"), 0o600)
	if _, err := loadOrCreateEARKey(p); err == nil {
		t.Fatal("junk ear.key accepted")
	}
}

// An EAR key created by another process between the read and the
// write is read and used (the not-exist branch once returned its own
// "no such file" error instead).
func TestEARKeyCreatedMeanwhile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ear.key")
	other, err := loadOrCreateEARKey(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := loadOrCreateEARKeyWith(p, func() (*ecdsa.PrivateKey, error) {
		// Another verifier writes its key first.
		b, _ := sig.MarshalPrivateKey(other)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if err != nil || !got.Equal(other) {
		t.Fatalf("key created meanwhile: err %v, same key %v", err, err == nil && got.Equal(other))
	}
}

// The state directory is made private: created 0700 whatever the umask,
// an existing 0755 one tightened; one owned by another user (tested as
// root) or a file is refused.
func TestPrivateStateDir(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	base := t.TempDir()
	fresh := filepath.Join(base, "fresh", "state")
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	for _, d := range []string{fresh, open} {
		if err := privateDir(d); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want 0700", d, fi.Mode(), err)
		}
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if err := privateDir(file); err == nil {
		t.Error("a file as the state directory accepted")
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o755)
		os.Chown(other, 12345, 12345)
		if err := privateDir(other); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("another user's state directory: %v", err)
		}
	}
}
