// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/testenv"
)

// fileArgCases are invocations of every subcommand that reads a file, with
// {X} where a file argument goes; the others are valid (see fileFixtures).
// operand marks a PATH operand (a file to label or verify), which is not
// read whole, so /dev/zero there is no trap.
var fileArgCases = []struct {
	args    []string
	operand bool
}{
	{[]string{"keygen", "--key", "{X}/k.pem", "--cert", "{X}/c.der"}, true},
	{[]string{"hash", "{X}"}, true},
	{[]string{"sign", "--key", "{X}", "{F}"}, false},
	{[]string{"sign", "--key", "{K}", "{X}"}, true},
	{[]string{"sign", "--key", "{K}", "--keyid-from-cert", "{X}", "{F}"}, false},
	{[]string{"verify", "{X}"}, true},
	{[]string{"verify", "--cert", "{X}", "{F}"}, false},
	{[]string{"verify", "--evm-cert", "{X}", "{F}"}, false},
	{[]string{"verify", "--evmkey", "{X}", "--passphrase-env", "INTACT_TEST_PASS", "{F}"}, false},
	{[]string{"hmac", "--evmkey", "{X}", "--passphrase-env", "INTACT_TEST_PASS", "{F}"}, false},
	{[]string{"evmkey", "reseal", "--evmkey", "{X}", "--tpm", "sim"}, false},
	{[]string{"evmkey", "export", "--evmkey", "{X}", "--kmk", "{F}", "--passphrase-env", "INTACT_TEST_PASS"}, false},
	{[]string{"measure", "--log", "{D}/list", "--tpm", "sim", "{X}"}, true},
	{[]string{"log", "show", "{X}"}, false},
	{[]string{"log", "convert", "--to", "ascii", "{X}"}, false},
	{[]string{"log", "replay", "{X}"}, false},
	{[]string{"log", "replay", "--pcrs", "{X}", "{L}"}, false},
	{[]string{"eventlog", "replay", "{X}"}, false},
	{[]string{"eventlog", "replay", "--pcrs", "{X}", "{E}"}, false},
	{[]string{"manifest", "create", "--key", "{X}", "-o", "{O}/m", "{D}"}, false},
	{[]string{"manifest", "check", "--cert", "{X}", "{F}"}, false},
	{[]string{"manifest", "check", "--cert", "{C}", "{X}"}, false},
	{[]string{"policy", "check", "{X}"}, false},
	{[]string{"policy", "generate", "--tree", "{X}"}, true},
	{[]string{"policy", "generate", "--log", "{X}"}, false},
	{[]string{"policy", "generate", "--tree", "{D}", "--cert", "{X}"}, false},
	{[]string{"policy", "generate", "--manifest", "{X}", "--manifest-cert", "{C}"}, false},
	{[]string{"policy", "import-keylime", "{X}"}, false},
	{[]string{"policy", "merge", "{X}", "{P}", "--out", "{D}/merged"}, false},
	{[]string{"policy", "diff", "{P}", "{X}"}, false},
	{[]string{"policy", "window", "{X}", "{P}", "--for", "1h", "--out", "{D}/w"}, false},
	{[]string{"policy", "sign", "--key", "{X}", "{P}"}, false},
	{[]string{"policy", "sign", "--key", "{K}", "{X}"}, false},
	{[]string{"policy", "verify-signature", "--cert", "{X}", "{P}"}, false},
	{[]string{"policy", "verify-signature", "--cert", "{C}", "{X}"}, false},
	{[]string{"policy", "verify-signature", "--cert", "{C}", "--sig", "{X}", "{P}"}, false},
	{[]string{"policy", "eval", "{X}", "{L}"}, false},
	{[]string{"policy", "eval", "{P}", "{X}"}, false},
	{[]string{"status", "--socket", "{X}"}, true},
}

// fileFixtures makes the valid files the cases name: {K} key, {C} its
// certificate, {F} a file, {D} a directory, {O} another one, {P} a runtime policy, {L} a
// measurement list, {E} a boot event log.
func fileFixtures(t *testing.T) map[string]string {
	t.Helper()
	d := t.TempDir()
	fx := map[string]string{"{D}": d, "{O}": t.TempDir(), "{K}": filepath.Join(d, "k.pem"), "{C}": filepath.Join(d, "c.der"),
		"{F}": writeFile(t, filepath.Join(d, "f"), "content"), "{P}": filepath.Join(d, "p.json"),
		"{L}": testenv.Testdata(t, "keylime/ima-log-sha256"), "{E}": testenv.Testdata(t, "tcg-eventlogs/debian-10.bin")}
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", fx["{K}"], "--cert", fx["{C}"])
	mustRun(t, 0, "policy", "generate", "--tree", d, "--out", fx["{P}"])
	t.Setenv("INTACT_TEST_PASS", "a passphrase")
	return fx
}

func fill(args []string, fx map[string]string, x string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		a = strings.ReplaceAll(a, "{X}", x)
		for k, v := range fx {
			a = strings.ReplaceAll(a, k, v)
		}
		out[i] = a
	}
	return out
}

// TestMissingFileNamed: every subcommand given a file that does not exist
// exits 2 with an error that names it (the old code said "loading
// certificate: no such file or directory", and the like, without saying
// which).
func TestMissingFileNamed(t *testing.T) {
	fx := fileFixtures(t)
	for _, tc := range fileArgCases {
		missing := filepath.Join(t.TempDir(), "missing-"+strings.Join(tc.args[:1], "-"))
		args := fill(tc.args, fx, missing)
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, missing) || !strings.HasPrefix(stderr, "intact: error: ") {
			t.Errorf("intact %s: exit %d, stderr %q; want exit 2 naming %s", strings.Join(tc.args, " "), code, stderr, missing)
		}
	}
}

// TestEndlessFileRefused: a key, certificate, policy, list or PCR file
// that is endless (/dev/zero) or huge fails at once with exit 2 naming it,
// in bounded memory. The old code read /dev/zero until memory ran out.
func TestEndlessFileRefused(t *testing.T) {
	fx := fileFixtures(t)
	for _, tc := range fileArgCases {
		if tc.operand {
			continue
		}
		args := fill(tc.args, fx, "/dev/zero")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, stderr, code := runCLI(t, args...)
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if code != 2 || !strings.Contains(stderr, "/dev/zero") {
			t.Errorf("intact %s: exit %d, stderr %q; want exit 2 naming /dev/zero", strings.Join(tc.args, " "), code, stderr)
		}
		if took > time.Second {
			t.Errorf("intact %s took %v, want under a second", strings.Join(tc.args, " "), took)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Errorf("intact %s allocated %d MiB", strings.Join(tc.args, " "), alloc>>20)
		}
	}
	// A huge regular file (sparse, 2 GiB) as a certificate: refused from
	// its size, unread.
	huge := filepath.Join(t.TempDir(), "huge.der")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(2 << 30)
	f.Close()
	start := time.Now()
	if _, stderr, code := runCLI(t, "verify", "--cert", huge, fx["{F}"]); code != 2 || !strings.Contains(stderr, huge) || time.Since(start) > time.Second {
		t.Errorf("a 2 GiB certificate: exit %d, %q, %v", code, stderr, time.Since(start))
	}
}

// TestDevZeroCertBinary: the built binary given --cert /dev/zero exits 2
// within a second, its peak memory small (ru_maxrss).
func TestDevZeroCertBinary(t *testing.T) {
	gobin := testenv.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "intact")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f := writeFile(t, filepath.Join(t.TempDir(), "f"), "x")
	cmd := exec.Command(bin, "verify", "--cert", "/dev/zero", f)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "/dev/zero") {
		t.Fatalf("verify --cert /dev/zero: %v\n%s", err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
	t.Logf("exit 2 in %v, max rss %d KiB: %s", took, rss, out)
	if took > time.Second || rss > 64<<10 {
		t.Errorf("verify --cert /dev/zero: %v, max rss %d KiB; want under a second and 64 MiB", took, rss)
	}
}

// TestHints: EPERM writing security.* says to run as root or use
// --xattr-user; unknown-key with no --cert at all says to give one; a bare
// "intact policy" lists every subcommand.
func TestHints(t *testing.T) {
	_, stderr, code := runCLI(t, "policy")
	if code != 2 {
		t.Errorf("bare policy: exit %d", code)
	}
	for _, sub := range append([]string{"check"}, rtpolicyCommandNames...) {
		if !strings.Contains(stderr, sub) {
			t.Errorf("bare policy does not list %s: %q", sub, stderr)
		}
	}
	if len(rtpolicyCommandNames) != len(rtpolicyCommands) {
		t.Errorf("rtpolicyCommandNames %v and rtpolicyCommands disagree", rtpolicyCommandNames)
	}
	for _, n := range rtpolicyCommandNames {
		if rtpolicyCommands[n] == nil {
			t.Errorf("%s listed but not a command", n)
		}
	}

	// unknown-key without --cert.
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", key, "--cert", cert)
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	if _, _, code := runCLI(t, "sign", "--xattr-user", "--key", key, f); code != 0 {
		t.Skipf("user xattrs unsupported in %s", dir)
	}
	_, stderr, code = runCLI(t, "verify", "--xattr-user", f)
	if code != 1 || !strings.Contains(stderr, "intact: hint: no --cert given") {
		t.Errorf("unknown-key without --cert: exit %d, %q", code, stderr)
	}
	if _, stderr, _ := runCLI(t, "verify", "--xattr-user", "--cert", cert, f); strings.Contains(stderr, "no --cert given") {
		t.Errorf("hint with --cert given: %q", stderr)
	}
}

// TestEPERMHint: an unprivileged user writing security.ima gets the hint
// (run as root, or --xattr-user).
func TestEPERMHint(t *testing.T) {
	testenv.RequireRoot(t)
	gobin := testenv.RequireTool(t, "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "intact")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	os.Chown(f, 65534, 65534)
	cmd := exec.Command(bin, "hash", f)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "operation not permitted") ||
		!strings.Contains(string(out), "intact: hint: writing security.ima needs root (CAP_SYS_ADMIN): run as root, or give --xattr-user") {
		t.Errorf("hash as an unprivileged user: %v\n%s", err, out)
	}
}
