// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/xattr"
)

// Cheap argon2id cost for tests; real keys use evm.DefaultKDF.
var testKDFFlags = []string{"--kdf-time", "1", "--kdf-memory", "64", "--kdf-threads", "1"}

const testPassEnv = "INTACT_TEST_EVM_PASSPHRASE"

// makeEVMKey creates an EVM key file with passphrase "pw-"+name.
func makeEVMKey(t *testing.T, dir, name string) string {
	t.Helper()
	t.Setenv(testPassEnv, "pw-"+name)
	path := filepath.Join(dir, name+".evmkey")
	mustRun(t, 0, append([]string{"evmkey", "create", "--out", path, "--passphrase-env", testPassEnv}, testKDFFlags...)...)
	return path
}

func getEVM(t *testing.T, path string) []byte {
	t.Helper()
	v, err := xattr.Get(path, "security.evm")
	if err != nil {
		t.Fatalf("reading security.evm of %s: %v", path, err)
	}
	return v
}

func TestEVMKeyCreate(t *testing.T) {
	dir := t.TempDir()
	key := makeEVMKey(t, dir, "k")
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	b, _ := os.ReadFile(key)
	kf, err := evm.ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := kf.Open([]byte("pw-k")); err != nil || len(k) != evm.KeySize {
		t.Fatalf("opening the created key: %d bytes, %v", len(k), err)
	}
	// Never overwritten.
	_, stderr, code := runCLI(t, append([]string{"evmkey", "create", "--out", key, "--passphrase-env", testPassEnv}, testKDFFlags...)...)
	if after, _ := os.ReadFile(key); code != 2 || !strings.Contains(stderr, "already exists") || !bytes.Equal(after, b) {
		t.Errorf("second create: exit %d, %q", code, stderr)
	}
	// Passphrase from stdin.
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader("from stdin\n"), stdout: &out, stderr: &errb, getenv: os.Getenv}
	k2 := filepath.Join(dir, "stdin.evmkey")
	if code := run(e, append([]string{"evmkey", "create", "--out", k2, "--passphrase-stdin"}, testKDFFlags...)); code != 0 {
		t.Fatalf("create --passphrase-stdin: exit %d, %s", code, errb.String())
	}
	b2, _ := os.ReadFile(k2)
	kf2, _ := evm.ParseKeyFile(b2)
	if _, err := kf2.Open([]byte("from stdin")); err != nil {
		t.Errorf("stdin passphrase: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"evmkey"}, "evmkey create"},
		{[]string{"evmkey", "create", "--passphrase-env", testPassEnv}, "--out is required"},
		{[]string{"evmkey", "create", "--out", filepath.Join(dir, "x"), "--passphrase-env", "INTACT_TEST_UNSET_VAR"}, "empty or unset"},
		{[]string{"evmkey", "create", "--out", filepath.Join(dir, "x")}, "no passphrase"},
		{[]string{"evmkey", "create", "--out", filepath.Join(dir, "x"), "--passphrase-env", testPassEnv, "--kdf-memory", "1"}, "argon2id memory"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("intact %v: exit %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a refused create wrote a file")
	}
}

// TestHMACWrongPassphrase: a wrong passphrase is a clear error, exit 2,
// and nothing is written.
func TestHMACWrongPassphrase(t *testing.T) {
	dir := xattrDir(t)
	key := makeEVMKey(t, dir, "k")
	f := writeFile(t, filepath.Join(dir, "f"), "data\n")
	mustRun(t, 0, "hash", f)
	t.Setenv(testPassEnv, "not the passphrase")
	_, stderr, code := runCLI(t, "hmac", "--evmkey", key, "--passphrase-env", testPassEnv, f)
	if code != 2 || !strings.Contains(stderr, "intact: error: "+key+": wrong passphrase") {
		t.Errorf("hmac with a wrong passphrase: exit %d, %q", code, stderr)
	}
	if _, err := xattr.Get(f, "security.evm"); err != xattr.ErrNotFound {
		t.Errorf("security.evm after a wrong passphrase: %v", err)
	}
	_, stderr, code = runCLI(t, "verify", "--evmkey", key, "--passphrase-env", testPassEnv, f)
	if code != 2 || !strings.Contains(stderr, "wrong passphrase") {
		t.Errorf("verify with a wrong passphrase: exit %d, %q", code, stderr)
	}
	// A damaged key file is named as such.
	bad := writeFile(t, filepath.Join(dir, "bad.evmkey"), "intact-evm-key v1\nkind nope\n")
	if _, stderr, code = runCLI(t, "hmac", "--evmkey", bad, "--passphrase-env", testPassEnv, f); code != 2 || !strings.Contains(stderr, "not a valid evm key file") {
		t.Errorf("hmac with a damaged key file: exit %d, %q", code, stderr)
	}
}

// TestHMACAndSignatures: hmac, sign --evm portable/full and verify on a
// local file system, including what --require-evm and a missing key do.
func TestHMACAndSignatures(t *testing.T) {
	dir := xattrDir(t)
	key := makeEVMKey(t, dir, "k")
	sk, cert := filepath.Join(dir, "s.pem"), filepath.Join(dir, "s.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", sk, "--cert", cert)
	hm := writeFile(t, filepath.Join(dir, "hmac"), "hmac'd\n")
	port := writeFile(t, filepath.Join(dir, "portable"), "portable\n")
	full := writeFile(t, filepath.Join(dir, "full"), "full\n")
	bare := writeFile(t, filepath.Join(dir, "bare"), "no evm\n")
	mustRun(t, 0, "sign", "--key", sk, hm, bare)
	mustRun(t, 0, "hmac", "--evmkey", key, "--passphrase-env", testPassEnv, hm)
	mustRun(t, 0, "sign", "--key", sk, "--evm", "portable", port)
	mustRun(t, 0, "sign", "--key", sk, "--evm", "full", full)
	for p, typ := range map[string]byte{hm: 0x02, port: 0x05, full: 0x03} {
		if v := getEVM(t, p); v[0] != typ || (typ == 0x02 && len(v) != 21) {
			t.Errorf("%s: security.evm %x, want type %#x", p, v, typ)
		}
	}
	all := []string{hm, port, full, bare}
	// With an EVM key, security.evm is required (bare: missing-HMAC).
	v := verdicts(t, 1, append([]string{"--cert", cert, "--evmkey", key, "--passphrase-env", testPassEnv}, all...)...)
	for _, p := range all {
		if want := map[bool]string{true: "no-label", false: "ok"}[p == bare]; v[p] != want {
			t.Errorf("%s: %s, want %s", p, v[p], want)
		}
	}
	v = verdicts(t, 1, append([]string{"--cert", cert, "--require-evm"}, all...)...)
	if v[hm] != "unknown-key" || v[bare] != "no-label" || v[port] != "ok" || v[full] != "ok" {
		t.Errorf("--require-evm without --evmkey: %v", v)
	}
	for _, p := range all {
		if err := os.Chmod(p, os.ModeSetuid|0o755); err != nil {
			t.Fatal(err)
		}
	}
	v = verdicts(t, 1, append([]string{"--cert", cert, "--evmkey", key, "--passphrase-env", testPassEnv, "--evm-optional"}, all...)...)
	if v[hm] != "metadata-changed" || v[port] != "metadata-changed" || v[full] != "metadata-changed" || v[bare] != "ok" {
		t.Errorf("after setuid: %v", v)
	}
	// --xattr-user: user.ima and user.evm.
	u := writeFile(t, filepath.Join(dir, "user"), "user ns\n")
	mustRun(t, 0, "sign", "--xattr-user", "--key", sk, "--evm", "portable", u)
	if _, err := xattr.Get(u, "user.evm"); err != nil {
		t.Fatalf("user.evm: %v", err)
	}
	if _, err := xattr.Get(u, "security.evm"); err != xattr.ErrNotFound {
		t.Errorf("--xattr-user wrote security.evm: %v", err)
	}
	if v := verdicts(t, 0, "--xattr-user", "--cert", cert, "--require-evm", u); v[u] != "ok" {
		t.Errorf("--xattr-user: %v", v)
	}
	os.Chmod(u, 0o700)
	if v := verdicts(t, 1, "--xattr-user", "--cert", cert, u); v[u] != "metadata-changed" {
		t.Errorf("--xattr-user after chmod: %v", v)
	}
}

// TestEVMKeyExport: the exported blob holds the key of the key file, under
// the given master key, and the kernel's encrypted key type loads it.
func TestEVMKeyExport(t *testing.T) {
	dir := t.TempDir()
	key := makeEVMKey(t, dir, "k")
	kmk := writeFile(t, filepath.Join(dir, "kmk"), "0123456789abcdef0123456789abcdef")
	blob := strings.TrimSpace(mustRun(t, 0, "evmkey", "export", "--evmkey", key, "--kmk", kmk, "--kmk-desc", "user:intact-test-kmk", "--passphrase-env", testPassEnv))
	b, _ := os.ReadFile(key)
	kf, _ := evm.ParseKeyFile(b)
	want, _ := kf.Open([]byte("pw-k"))
	got, err := evm.OpenKernelBlob(blob, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("exported blob opens to %x, %v; want the key file's key", got, err)
	}
	out := filepath.Join(dir, "evm-user.blob")
	mustRun(t, 0, "evmkey", "export", "--evmkey", key, "--kmk", kmk, "--kmk-desc", "user:intact-test-kmk", "--passphrase-env", testPassEnv, "--out", out)
	if _, stderr, code := runCLI(t, "evmkey", "export", "--evmkey", key, "--kmk", kmk, "--passphrase-env", testPassEnv, "--out", out); code != 2 || !strings.Contains(stderr, "already exists") {
		t.Errorf("export over an existing file: exit %d, %q", code, stderr)
	}
	t.Setenv(testPassEnv, "wrong")
	if _, stderr, code := runCLI(t, "evmkey", "export", "--evmkey", key, "--kmk", kmk, "--passphrase-env", testPassEnv); code != 2 || !strings.Contains(stderr, "wrong passphrase") {
		t.Errorf("export with a wrong passphrase: exit %d, %q", code, stderr)
	}
	testenv.RequireTool(t, "keyctl")
	script := `set -e
keyctl padd user intact-test-kmk @s < "$1" >/dev/null
keyctl add encrypted intact-test-evm "load $(cat "$2")" @s >/dev/null
`
	if out, err := exec.Command("keyctl", "session", "-", "sh", "-c", script, "sh", kmk, out).CombinedOutput(); err != nil {
		t.Errorf("the kernel does not load the exported blob: %v\n%s", err, out)
	}
}

func TestEVMUsageErrors(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	key := makeEVMKey(t, dir, "k")
	sk, cert := filepath.Join(dir, "s.pem"), filepath.Join(dir, "s.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", sk, "--cert", cert)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sign", "--key", sk, "--evm", "bogus", f}, `--evm "bogus": want portable, full or none`},
		{[]string{"sign", "--key", sk, "--evm", "portable", "-n", f}, "cannot be combined with -n"},
		{[]string{"sign", "--key", sk, "--evm", "full", "--uuid", "not-a-uuid", f}, "--uuid: \"not-a-uuid\" is not a uuid"},
		{[]string{"hmac", f}, "--evmkey is required"},
		{[]string{"hmac", "--evmkey", key, "--passphrase-env", testPassEnv, "--evm-xattr", "user.foo", f}, `does not start with "security."`},
		{[]string{"hmac", "--evmkey", key, "--passphrase-env", testPassEnv, "--passphrase-stdin", f}, "exclude each other"},
		{[]string{"hmac", "--evmkey", filepath.Join(dir, "missing"), "--passphrase-env", testPassEnv, f}, "no such file"},
		{[]string{"verify", "--evmkey", key, f}, "no passphrase"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "intact: error: ") {
			t.Errorf("intact %v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestHMACOptions: --smack, --evm-xattr, --m32 and --uuid change what the
// HMAC covers exactly when they should.
func TestHMACOptions(t *testing.T) {
	dir := xattrDir(t)
	key := makeEVMKey(t, dir, "k")
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	mustRun(t, 0, "hash", f)
	hm := func(extra ...string) string {
		return mustRun(t, 0, append([]string{"hmac", "-n", "--evmkey", key, "--passphrase-env", testPassEnv, "--uuid", interopUUID}, append(extra, f)...)...)
	}
	base := hm()
	if hm("--smack") != base || hm("--evm-xattr", "security.extra") != base {
		t.Error("--smack or --evm-xattr changed the hmac of a file without those xattrs")
	}
	setX(t, f, "security.SMACK64EXEC", "exec")
	setX(t, f, "security.extra", "extra")
	if hm() != base {
		t.Error("SMACK64EXEC or an unlisted xattr changed the default hmac")
	}
	if hm("--smack") == base || hm("--evm-xattr", "security.extra") == base {
		t.Error("--smack or --evm-xattr did not cover the xattr")
	}
	if hm("--m32") == base || hm("--uuid", "none") == base {
		t.Error("--m32 or --uuid none did not change the hmac")
	}
	if _, err := xattr.Get(f, "security.evm"); err != xattr.ErrNotFound {
		t.Errorf("hmac -n wrote security.evm: %v", err)
	}
}

// TestHMACNeedsGeneration: on a file system without FS_IOC_GETVERSION
// (tmpfs) an HMAC cannot be made as the kernel would; intact says so.
func TestHMACNeedsGeneration(t *testing.T) {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	key := makeEVMKey(t, t.TempDir(), "k")
	tmp, err := os.CreateTemp("/dev/shm", "intact-test-")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	_, stderr, code := runCLI(t, "hmac", "-n", "--evmkey", key, "--passphrase-env", testPassEnv, tmp.Name())
	if code != 2 || !strings.Contains(stderr, tmp.Name()+": ") || !strings.Contains(stderr, "does not report inode generations") {
		t.Errorf("hmac on tmpfs: exit %d, %q", code, stderr)
	}
}

// TestEVMStrip: with an EVM key or EVM certificates, stripping
// security.evm does not skip the metadata check. A file made setuid after
// its HMAC (or EVM signature), then stripped of security.evm, is no-label
// (missing-HMAC), as in the kernel once EVM is initialized; --evm-optional
// lets it pass, loudly.
func TestEVMStrip(t *testing.T) {
	dir := xattrDir(t)
	key := makeEVMKey(t, dir, "k")
	sk, cert := filepath.Join(dir, "s.pem"), filepath.Join(dir, "s.der")
	mustRun(t, 0, "keygen", "--key", sk, "--cert", cert)
	ek, ecert := filepath.Join(dir, "e.pem"), filepath.Join(dir, "e.der")
	mustRun(t, 0, "keygen", "--key", ek, "--cert", ecert)
	hm := writeFile(t, filepath.Join(dir, "hmac"), "hmac'd\n")
	mustRun(t, 0, "sign", "--key", sk, hm)
	mustRun(t, 0, "hmac", "--evmkey", key, "--passphrase-env", testPassEnv, hm)
	port := writeFile(t, filepath.Join(dir, "portable"), "portable\n")
	mustRun(t, 0, "sign", "--key", sk, "--evm", "portable", port)
	evmSigned := writeFile(t, filepath.Join(dir, "evm-key-only"), "signed by the evm key\n")
	mustRun(t, 0, "sign", "--key", ek, "--evm", "portable", evmSigned)
	hmacArgs := []string{"--cert", cert, "--evmkey", key, "--passphrase-env", testPassEnv}
	if v := verdicts(t, 0, append(hmacArgs, hm)...); v[hm] != "ok" {
		t.Fatalf("before the attack: %v", v)
	}
	// The attack: setuid, then strip the HMAC that would tell.
	for _, p := range []string{hm, port} {
		if err := os.Chmod(p, os.ModeSetuid|0o755); err != nil {
			t.Fatal(err)
		}
		if err := xattrRemove(p, "security.evm"); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := runCLI(t, append([]string{"verify"}, append(hmacArgs, hm)...)...)
	if code != 1 || !strings.Contains(out, hm+": no-label") || !strings.Contains(out, "missing-HMAC") {
		t.Errorf("verify --evmkey after setuid + strip: exit %d\n%s%s", code, out, errs)
	}
	// EVM certificates initialize EVM too.
	if v := verdicts(t, 1, "--cert", cert, "--evm-cert", ecert, port); v[port] != "no-label" {
		t.Errorf("verify --evm-cert after setuid + strip: %v", v)
	}
	// Certificates for EVM only: not trusted for IMA signatures.
	if v := verdicts(t, 1, "--cert", cert, "--evm-cert", ecert, evmSigned); v[evmSigned] != "unknown-key" {
		t.Errorf("an --evm-cert vouched for an IMA signature: %v", v)
	}
	// The opt-out, for migrations, says so.
	out, errs, code = runCLI(t, append([]string{"verify", "--evm-optional"}, append(hmacArgs, hm)...)...)
	if code != 0 || !strings.Contains(errs, "intact: warning: --evm-optional") {
		t.Errorf("--evm-optional: exit %d, stderr %q, want 0 and a warning\n%s", code, errs, out)
	}
	for _, args := range [][]string{
		{"verify", "--cert", cert, "--evm-optional", hm},
		{"verify", "--cert", cert, "--evm-cert", ecert, "--evm-optional", "--require-evm", hm},
	} {
		if _, errs, code := runCLI(t, args...); code != 2 || !strings.Contains(errs, "--evm-optional") {
			t.Errorf("intact %v: exit %d %q, want a usage error", args, code, errs)
		}
	}
}
