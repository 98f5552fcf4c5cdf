// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/tpm"
)

// hmacOf runs intact hmac -n with the sealed key and returns the value it
// prints for f.
func hmacOf(t *testing.T, sw *tpmtest.Swtpm, key, f string, extra ...string) string {
	t.Helper()
	args := append([]string{"hmac", "-n", "--uuid", "none", "--evmkey", key, "--tpm", sw.Spec()}, extra...)
	out := mustRun(t, 0, append(args, f)...)
	v, _, _ := strings.Cut(out, " ")
	if !strings.HasPrefix(v, "02") {
		t.Fatalf("hmac -n printed %q", out)
	}
	return v
}

// hmacFails runs intact hmac and checks it exits 2, prints nothing on
// stdout, and says want on stderr.
func hmacFails(t *testing.T, sw *tpmtest.Swtpm, key, f, want string, extra ...string) {
	t.Helper()
	args := append([]string{"hmac", "-n", "--uuid", "none", "--evmkey", key, "--tpm", sw.Spec()}, extra...)
	stdout, stderr, code := runCLI(t, append(args, f)...)
	if code != 2 || stdout != "" || !strings.Contains(stderr, want) {
		t.Fatalf("hmac: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, want)
	}
}

func pcrValue(t *testing.T, sw *tpmtest.Swtpm, pcr int) []byte {
	t.Helper()
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	v, err := tp.ReadPCRs(crypto.SHA256, []int{pcr})
	if err != nil {
		t.Fatal(err)
	}
	return v[pcr]
}

// TestEVMKeySealedToPCRs: evmkey create --tpm --pcrs seals the EVM key;
// intact hmac unseals it; after tpm2_pcrextend on a sealed PCR it refuses
// (exit 2) naming the PCR; evmkey reseal moves the key to the values a
// planned extend will produce, and afterwards the same key opens again.
func TestEVMKeySealedToPCRs(t *testing.T) {
	dir := t.TempDir()
	sw := tpmtest.Start(t, tpmtest.Options{})
	key := filepath.Join(dir, "evm.key")
	f := writeFile(t, filepath.Join(dir, "file"), "evm-protected\n")
	mustRun(t, 0, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", "0,2,4,7,11", "--out", key)
	if b, _ := os.ReadFile(key); !strings.HasPrefix(string(b), "intact-evm-key v1\nkind tpm-sealed\nsealed ") {
		t.Fatalf("key file:\n%s", b)
	}
	h1 := hmacOf(t, sw, key, f)
	if h2 := hmacOf(t, sw, key, f); h2 != h1 {
		t.Fatalf("the unsealed key changed: %s then %s", h1, h2)
	}

	// A planned update will extend PCR 11 with d: reseal to the result.
	d := sha256.Sum256([]byte("kernel 6.99"))
	next := sha256.Sum256(append(pcrValue(t, sw, 11), d[:]...))
	mustRun(t, 0, "evmkey", "reseal", "--evmkey", key, "--tpm", sw.Spec(), "--pcr-value", "11="+hex.EncodeToString(next[:]))
	hmacFails(t, sw, key, f, "pcr 11 (sha256) differs from the sealed values")
	sw.Tool(t, "tpm2_pcrextend", "11:sha256="+hex.EncodeToString(d[:]))
	if h := hmacOf(t, sw, key, f); h != h1 {
		t.Fatalf("after reseal and update: hmac %s, want %s (the same key)", h, h1)
	}

	// An unplanned change: refused, naming the PCR; reseal cannot help
	// now (the PCRs no longer hold the sealed values).
	sw.Tool(t, "tpm2_pcrextend", "7:sha256="+strings.Repeat("07", 32))
	hmacFails(t, sw, key, f, "pcr 7 (sha256) differs")
	_, stderr, code := runCLI(t, "evmkey", "reseal", "--evmkey", key, "--tpm", sw.Spec())
	if code != 2 || !strings.Contains(stderr, "pcr 7") {
		t.Fatalf("reseal after an unplanned change: exit %d, %q", code, stderr)
	}
}

func TestEVMKeySealedPassphrase(t *testing.T) {
	dir := t.TempDir()
	sw := tpmtest.Start(t, tpmtest.Options{})
	key := filepath.Join(dir, "evm.key")
	f := writeFile(t, filepath.Join(dir, "file"), "x\n")
	t.Setenv("INTACT_TEST_PASS", "sealed and secret")
	t.Setenv("INTACT_TEST_WRONG", "wrong")
	mustRun(t, 0, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", "7", "--passphrase-env", "INTACT_TEST_PASS", "--out", key)
	hmacOf(t, sw, key, f, "--passphrase-env", "INTACT_TEST_PASS")
	hmacFails(t, sw, key, f, "wrong passphrase", "--passphrase-env", "INTACT_TEST_WRONG")
	hmacFails(t, sw, key, f, "no passphrase") // none given, not on a terminal
}

// TestEVMKeySealedBadInput: a wrong PCR list, no TPM, a corrupted key
// file: exit 2, a clear message, nothing written.
func TestEVMKeySealedBadInput(t *testing.T) {
	dir := t.TempDir()
	sw := tpmtest.Start(t, tpmtest.Options{})
	out := filepath.Join(dir, "new.key")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tpm", sw.Spec(), "--pcrs", "0,24"}, `"24" is not a pcr index`},
		{[]string{"--tpm", sw.Spec(), "--pcrs", "7,7"}, "pcr 7 listed twice"},
		{[]string{"--tpm", sw.Spec(), "--pcrs", ""}, "--tpm needs --pcrs"},
		{[]string{"--pcrs", "7"}, "--pcrs needs --tpm"},
		{[]string{"--tpm", "/dev/intact-no-tpm", "--pcrs", "7"}, "no tpm"},
		{[]string{"--tpm", "swtpm:127.0.0.1:1", "--pcrs", "7"}, "no tpm"},
	} {
		_, stderr, code := runCLI(t, append([]string{"evmkey", "create", "--out", out}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("evmkey create %v: exit %d, stderr %q; want %q", c.args, code, stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("evmkey create %v wrote %s", c.args, out)
		}
	}

	key := filepath.Join(dir, "evm.key")
	f := writeFile(t, filepath.Join(dir, "file"), "x\n")
	mustRun(t, 0, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", "7", "--out", key)
	good, _ := os.ReadFile(key)
	lines := strings.Split(string(good), "\n")
	blob, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(lines[2], "sealed "))
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-8] ^= 0x01 // a bit inside the TPM's private part
	corrupt := filepath.Join(dir, "corrupt.key")
	os.WriteFile(corrupt, []byte(lines[0]+"\n"+lines[1]+"\nsealed "+base64.RawStdEncoding.EncodeToString(blob)+"\n"), 0o600)
	hmacFails(t, sw, corrupt, f, "corrupt.key: tpm: unseal: load key: key blob not loadable")
	truncated := filepath.Join(dir, "truncated.key")
	os.WriteFile(truncated, []byte(lines[0]+"\n"+lines[1]+"\n"+lines[2][:len("sealed ")+64]+"\n"), 0o600)
	hmacFails(t, sw, truncated, f, "truncated.key: tpm: parsing sealed key")
	hmacFails(t, sw, key, f, "no tpm", "--tpm", "/dev/intact-no-tpm")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--pcr-value", "3=" + strings.Repeat("00", 32)}, "pcr 3 is not among the sealed pcrs 7"},
		{[]string{"--pcr-value", "7=abcd"}, "want 64 hex digits"},
		{[]string{"--pcrs", "99"}, "not a pcr index"},
	} {
		before, _ := os.ReadFile(key)
		_, stderr, code := runCLI(t, append([]string{"evmkey", "reseal", "--evmkey", key, "--tpm", sw.Spec()}, c.args...)...)
		after, _ := os.ReadFile(key)
		if code != 2 || !strings.Contains(stderr, c.want) || string(before) != string(after) {
			t.Errorf("reseal %v: exit %d, stderr %q, file changed %v", c.args, code, stderr, string(before) != string(after))
		}
	}
}

// TestVerifyWithSealedEVMKey: a file signed with a TPM key and HMAC'd
// with a TPM-sealed EVM key verifies with intact verify --evmkey --tpm;
// once a sealed PCR changes, verify refuses to run (exit 2) naming it.
func TestVerifyWithSealedEVMKey(t *testing.T) {
	dir := xattrDir(t)
	sw := tpmtest.Start(t, tpmtest.Options{})
	sk, cert := filepath.Join(dir, "s.tpm"), filepath.Join(dir, "s.der")
	key := filepath.Join(dir, "evm.key")
	mustRun(t, 0, "keygen", "--tpm", sw.Spec(), "--key", sk, "--cert", cert)
	mustRun(t, 0, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", "0,7", "--out", key)
	f := writeFile(t, filepath.Join(dir, "file"), "signed and hmac'd\n")
	mustRun(t, 0, "sign", "--key", sk, "--tpm", sw.Spec(), f)
	mustRun(t, 0, "hmac", "--evmkey", key, "--tpm", sw.Spec(), f)
	if v := verdicts(t, 0, "--cert", cert, "--evmkey", key, "--tpm", sw.Spec(), "--require-evm", f); v[f] != "ok" {
		t.Fatalf("verify: %v", v)
	}
	sw.Tool(t, "tpm2_pcrextend", "0:sha256="+strings.Repeat("aa", 32))
	_, stderr, code := runCLI(t, "verify", "--cert", cert, "--evmkey", key, "--tpm", sw.Spec(), f)
	if code != 2 || !strings.Contains(stderr, "pcr 0 (sha256) differs") {
		t.Fatalf("verify after pcr 0 changed: exit %d, %q", code, stderr)
	}
}

// TestSealedKeyFailuresWriteNothing: with a wrong passphrase, or after a
// sealed PCR changed, intact hmac exits 2 and writes no security.evm.
func TestSealedKeyFailuresWriteNothing(t *testing.T) {
	dir := xattrDir(t)
	sw := tpmtest.Start(t, tpmtest.Options{})
	key := filepath.Join(dir, "evm.key")
	t.Setenv("INTACT_TEST_PASS", "right")
	t.Setenv("INTACT_TEST_WRONG", "wrong")
	mustRun(t, 0, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", "4", "--passphrase-env", "INTACT_TEST_PASS", "--out", key)
	f := writeFile(t, filepath.Join(dir, "f"), "x\n")
	noEVM := func(step string) {
		t.Helper()
		if v, err := xattr.Get(f, "security.evm"); err == nil {
			t.Fatalf("%s: security.evm written: %x", step, v)
		}
	}
	_, stderr, code := runCLI(t, "hmac", "--evmkey", key, "--tpm", sw.Spec(), "--passphrase-env", "INTACT_TEST_WRONG", f)
	if code != 2 || !strings.Contains(stderr, "wrong passphrase") {
		t.Fatalf("wrong passphrase: exit %d, %q", code, stderr)
	}
	noEVM("wrong passphrase")
	sw.Tool(t, "tpm2_pcrextend", "4:sha256="+strings.Repeat("44", 32))
	_, stderr, code = runCLI(t, "hmac", "--evmkey", key, "--tpm", sw.Spec(), "--passphrase-env", "INTACT_TEST_PASS", f)
	if code != 2 || !strings.Contains(stderr, "pcr 4 (sha256) differs") {
		t.Fatalf("pcr changed: exit %d, %q", code, stderr)
	}
	noEVM("pcr changed")
}

// TestEVMKeyRefusesUnsafePCRs: sealing to a resettable PCR (16, 20-23) or
// a runtime measurement PCR (10, 13) is refused without
// --allow-unsafe-pcrs, by create and by reseal, before the TPM is asked;
// forced, it warns on every such PCR. The refusal matters: after
// tpm2_pcrreset 23 and one extend, a key sealed to PCR 23 opens for
// anyone who can talk to the TPM. A reseal that drops PCRs warns.
func TestEVMKeyRefusesUnsafePCRs(t *testing.T) {
	dir := t.TempDir()
	sw := tpmtest.Start(t, tpmtest.Options{})
	out := filepath.Join(dir, "new.key")
	for _, list := range []string{"23", "7,16", "0,20", "13", "10,7"} {
		_, stderr, code := runCLI(t, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", list, "--out", out)
		if code != 2 || !strings.Contains(stderr, "refusing to seal") || !strings.Contains(stderr, "--allow-unsafe-pcrs") {
			t.Errorf("evmkey create --pcrs %s: exit %d, stderr %q; want a refusal", list, code, stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("evmkey create --pcrs %s wrote %s", list, out)
		}
	}

	// Forced: sealed, with a warning; and the attack the refusal prevents.
	key := filepath.Join(dir, "evm.key")
	f := writeFile(t, filepath.Join(dir, "file"), "x\n")
	_, stderr, code := runCLI(t, "evmkey", "create", "--tpm", sw.Spec(), "--pcrs", "7,23", "--allow-unsafe-pcrs", "--out", key)
	if code != 0 || !strings.Contains(stderr, "WARNING") || !strings.Contains(stderr, "pcr 23 is resettable") {
		t.Fatalf("forced create: exit %d, stderr %q", code, stderr)
	}
	h1 := hmacOf(t, sw, key, f)
	sw.Tool(t, "tpm2_pcrextend", "23:sha256="+strings.Repeat("ab", 32))
	hmacFails(t, sw, key, f, "pcr 23")
	sw.Tool(t, "tpm2_pcrreset", "23")
	if h := hmacOf(t, sw, key, f); h != h1 {
		t.Fatalf("after the reset the key gave %s, want %s", h, h1)
	}

	// reseal: an unsafe PCR is refused (also the one it has), dropping
	// PCRs warns.
	for _, args := range [][]string{{"--pcrs", "7,16"}, {}} {
		_, stderr, code := runCLI(t, append([]string{"evmkey", "reseal", "--evmkey", key, "--tpm", sw.Spec()}, args...)...)
		if code != 2 || !strings.Contains(stderr, "refusing to seal") {
			t.Errorf("reseal %v: exit %d, stderr %q; want a refusal", args, code, stderr)
		}
	}
	_, stderr, code = runCLI(t, "evmkey", "reseal", "--evmkey", key, "--tpm", sw.Spec(), "--pcrs", "7")
	if code != 0 || !strings.Contains(stderr, "warning: the key will no longer be sealed to pcrs 23") {
		t.Fatalf("reseal dropping 23: exit %d, stderr %q", code, stderr)
	}
	if h := hmacOf(t, sw, key, f); h != h1 {
		t.Fatalf("after the reseal the key gave %s, want %s", h, h1)
	}
}
