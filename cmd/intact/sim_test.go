// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/tpm"
)

const (
	noSimError = "intact: error: --tpm sim: this build has no TPM simulator (build with -tags intact_sim)\n"
	noSimHint  = "intact: hint: release builds use a TPM device (default, /dev/tpmrm0) or a swtpm (swtpm:HOST:PORT); for tests and demonstrations: go build -tags intact_sim ./cmd/intact"
)

// TestReleaseRefusesSim: in a build without the simulator (tpm.Opener{},
// what nosim.go gives main), every command that takes --tpm refuses sim
// with exit 2, the error naming the build tag and a hint, and writes
// nothing. With the simulator (runCLI) the same commands get past it.
func TestReleaseRefusesSim(t *testing.T) {
	fx := fileFixtures(t)
	d := fx["{D}"]
	// A TPM key and a TPM-sealed EVM key, made with the simulator.
	tpmKey, tpmCert := filepath.Join(d, "k.tpm"), filepath.Join(d, "k-tpm.der")
	mustRun(t, 0, "keygen", "--tpm", "sim", "--key", tpmKey, "--cert", tpmCert)
	sealed := filepath.Join(d, "sealed.evmkey")
	mustRun(t, 0, "evmkey", "create", "--out", sealed, "--tpm", "sim", "--pcrs", "7")
	out := filepath.Join(t.TempDir(), "out") // no command may create it
	for _, args := range [][]string{
		{"tpm", "pcrs", "--tpm", "sim"},
		{"tpm", "info", "--tpm", "sim", "--json"},
		{"keygen", "--tpm", "sim", "--key", out, "--cert", out + ".der"},
		{"sign", "--key", tpmKey, "--tpm", "sim", "--sigfile", fx["{F}"]},
		{"evmkey", "create", "--out", out, "--tpm", "sim", "--pcrs", "7"},
		{"evmkey", "reseal", "--evmkey", sealed, "--tpm", "sim"},
		{"hmac", "--evmkey", sealed, "--tpm", "sim", "--xattr-user", fx["{F}"]},
		{"verify", "--evmkey", sealed, "--tpm", "sim", "--xattr-user", fx["{F}"]},
		{"measure", "--log", out, "--tpm", "sim", fx["{F}"]},
		{"log", "replay", "--tpm", "sim", fx["{L}"]},
		{"eventlog", "replay", "--tpm", "sim", fx["{E}"]},
	} {
		before, _ := os.ReadFile(sealed)
		stdout, stderr, code := runWith(t, tpm.Opener{}, args...)
		if code != 2 || !strings.HasPrefix(stderr, noSimError) || !strings.Contains(stderr, noSimHint) || stdout != "" {
			t.Errorf("release intact %s: exit %d, stdout %q, stderr %q; want exit 2 and\n%s%s", strings.Join(args, " "), code, stdout, stderr, noSimError, noSimHint)
		}
		if _, err := os.Lstat(out); err == nil {
			t.Errorf("release intact %s created %s", strings.Join(args, " "), out)
		}
		if after, _ := os.ReadFile(sealed); string(after) != string(before) {
			t.Errorf("release intact %s changed %s", strings.Join(args, " "), sealed)
		}
		// With the simulator, whatever else may fail, sim is opened.
		if _, stderr, _ := runCLI(t, args...); strings.Contains(stderr, "no TPM simulator") {
			t.Errorf("intact %s with the simulator: %q", strings.Join(args, " "), stderr)
		}
		os.Remove(out)
		os.Remove(out + ".der")
	}
}

// TestReleaseBuildRefusesSim builds intact as scripts/install.sh does
// (no tags): `intact tpm pcrs --tpm sim` exits 2 naming the tag. Built
// with -tags intact_sim (the quickstart's build) it reads the simulator's
// PCRs.
func TestReleaseBuildRefusesSim(t *testing.T) {
	gobin := testenv.RequireTool(t, "go")
	dir := t.TempDir()
	for _, b := range []struct {
		tags     []string
		wantCode int
		want     string
	}{
		{nil, 2, noSimError + noSimHint},
		{[]string{"-tags", tpm.SimBuildTag}, 0, "sha256:\n  0 : 0x0000000000000000000000000000000000000000000000000000000000000000\n"},
	} {
		bin := filepath.Join(dir, "intact"+strings.Join(b.tags, ""))
		args := append(append([]string{"build"}, b.tags...), "-o", bin, ".")
		if out, err := exec.Command(gobin, args...).CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		cmd := exec.Command(bin, "tpm", "pcrs", "--tpm", "sim")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != b.wantCode || !strings.Contains(string(out), b.want) {
			t.Errorf("go %s; intact tpm pcrs --tpm sim: %v, want exit %d and %q; output:\n%s", strings.Join(args, " "), err, b.wantCode, b.want, out)
		}
	}
}
