// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

// runCLI runs the intact command line in-process and returns what it
// printed and its exit status. --tpm sim is the embedded simulator, as
// in a build with -tags intact_sim (runRelease: as in a release build).
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runWith(t, sim.Opener(), args...)
}

func runWith(t *testing.T, tpms tpm.Opener, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: os.Getenv, tpms: tpms}
	code = run(e, args)
	return out.String(), errb.String(), code
}

// mustRun runs the CLI and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, errs, code := runCLI(t, args...)
	if code != want {
		t.Fatalf("intact %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out
}

// verdicts runs intact verify --json and returns path -> verdict.
func verdicts(t *testing.T, want int, args ...string) map[string]string {
	t.Helper()
	out := mustRun(t, want, append([]string{"verify", "--json"}, args...)...)
	m := make(map[string]string)
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r struct{ Path, Verdict string }
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decoding verify --json output: %v\n%s", err, out)
		}
		m[r.Path] = r.Verdict
	}
	return m
}

// xattrDir returns a temporary directory on a file system that stores
// security.* xattrs (the test needs root to write them).
func xattrDir(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	os.WriteFile(probe, nil, 0o644)
	if err := exec.Command("setfattr", "-n", "security.ima", "-v", "0x01", probe).Run(); err != nil {
		testenv.RequireTool(t, "setfattr")
		t.Fatalf("%s does not store security.* xattrs: %v", dir, err)
	}
	os.Remove(probe)
	return dir
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func getLabel(t *testing.T, path string) []byte {
	t.Helper()
	v, err := xattr.Get(path, "security.ima")
	if err != nil {
		t.Fatalf("reading label of %s: %v", path, err)
	}
	return v
}

func setLabel(t *testing.T, path string, v []byte) {
	t.Helper()
	if err := xattr.Set(path, "security.ima", v); err != nil {
		t.Fatal(err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"verify"}, "no PATH given"},
		{[]string{"verify", "--bogus", "x"}, "flag provided but not defined"},
		{[]string{"verify", "/nonexistent/file"}, "/nonexistent/file: no such file or directory"},
		{[]string{"verify", "--cert", "/nonexistent.der", "/"}, "is a directory"},
		{[]string{"hash", "-a", "md5", "/etc/hostname"}, "not supported for labels"},
		{[]string{"sign", "/etc/hostname"}, "--key is required"},
		{[]string{"keygen", "--key", "k"}, "--key and --cert are required"},
		{[]string{"keygen", "--type", "dsa", "--key", "/nonexistent-dir/k", "--cert", "/nonexistent-dir/c"}, "unknown key type"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "intact: error: ") {
			t.Errorf("intact %v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, _, code := runCLI(t, "verify", "-h"); code != 0 {
		t.Errorf("verify -h: exit %d, want 0", code)
	}
	// An unreadable certificate is an operational error.
	dir := t.TempDir()
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	bad := writeFile(t, filepath.Join(dir, "bad.der"), "not a certificate")
	_, stderr, code := runCLI(t, "verify", "--cert", bad, f)
	if code != 2 || !strings.Contains(stderr, bad) {
		t.Errorf("verify with a bad certificate: exit %d, %q", code, stderr)
	}
}

func TestKeygenNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", key, "--cert", cert)
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, %v; want 0600", fi.Mode(), err)
	}
	before, _ := os.ReadFile(key)
	_, stderr, code := runCLI(t, "keygen", "--type", "ec-p256", "--key", key, "--cert", filepath.Join(dir, "other.der"))
	if code != 2 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second keygen: exit %d, %q", code, stderr)
	}
	after, _ := os.ReadFile(key)
	if !bytes.Equal(before, after) {
		t.Fatal("keygen overwrote an existing key")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.der")); err == nil {
		t.Fatal("keygen wrote a certificate although it refused the key")
	}
	// PEM certificate when the name does not end in .der.
	mustRun(t, 0, "keygen", "--type", "rsa2048", "--key", filepath.Join(dir, "r.pem"), "--cert", filepath.Join(dir, "r.crt"))
	if b, _ := os.ReadFile(filepath.Join(dir, "r.crt")); !bytes.HasPrefix(b, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatal("certificate not PEM")
	}
}

func xattrRemove(path, name string) error { return xattr.Remove(path, name) }
