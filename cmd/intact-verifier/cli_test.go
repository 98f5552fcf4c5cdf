package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
		{[]string{"serve", "--state", "x", "--webhook", "http://h/", "--webhook-secret", short}, 2, "shorter than 16"},
		{[]string{"serve", "--state", "x", "--webhook", "http://h/", "--webhook-secret", filepath.Join(dir, "none")}, 2, "no such file"},
		{[]string{"serve", "--state", "x", "--webhook-max-backoff", "1ms"}, 2, "too short"},
		{[]string{"serve", "--state", "x", "--history-heartbeat", "-1s"}, 2, "--history-heartbeat"},
		{[]string{"serve", "--state", "x", "--history", "0s"}, 2, "--history"},
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
