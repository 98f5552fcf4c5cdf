// SPDX-License-Identifier: Apache-2.0

package deps

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

// The verifier links go-attestation's attest package for boot event logs
// (eventlog), and go-tpm's tpmutil, legacy/tpm2 and tpm2/transport for
// TPM structures: each of those packages also holds code that opens a
// TPM. A package-level rule cannot exclude it (the Known exception in
// deps_test.go), so this checks what the linker kept: none of those
// functions may be in the verifier's binary.
var verifierDeviceTPM = []*regexp.Regexp{
	regexp.MustCompile(`^github\.com/google/go-attestation/attest\.(OpenTPM|openTPM|probeSystemTPMs|InjectSimulatedTPMForTest)$`),
	regexp.MustCompile(`^github\.com/google/go-attestation/attest\.\(\*(TPM|linuxCmdChannel|wrappedTPM20)\)\.`),
	regexp.MustCompile(`^github\.com/google/go-tpm/(tpmutil|legacy/tpm2|tpm2/transport)\.OpenTPM$`),
	regexp.MustCompile(`^github\.com/google/go-tpm/tpmutil\.\(\*EmulatorReadWriteCloser\)\.`),
	regexp.MustCompile(`^github\.com/google/go-tpm/tpm2/transport/(linuxtpm|linuxudstpm|tcp|simulator)\.`),
	regexp.MustCompile(`^github\.com/google/go-tpm-tools/`),
}

// verifierDeviceSymbols builds cmd/intact-verifier (with overlay, if not
// empty) and returns the device-TPM symbols in it.
func verifierDeviceSymbols(t *testing.T, overlay string) []string {
	t.Helper()
	testenv.RequireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "intact-verifier")
	args := []string{"build", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.Command("go", append(args, "./cmd/intact-verifier")...)
	cmd.Dir = testenv.Root(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	syms, err := Symbols(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(syms) < 1000 {
		t.Fatalf("only %d symbols in the verifier: is go tool nm reading it?", len(syms))
	}
	return MatchSymbols(syms, verifierDeviceTPM)
}

// TestVerifierHasNoDeviceTPMCode: the verifier's binary holds no function
// that opens a TPM (device, swtpm, simulator), although it links packages
// that have some.
func TestVerifierHasNoDeviceTPMCode(t *testing.T) {
	if hit := verifierDeviceSymbols(t, ""); len(hit) > 0 {
		t.Errorf("intact-verifier holds device-TPM code:\n%q", hit)
	}
}

// TestVerifierDeviceTPMCodeCaught proves the check can fail: an overlay
// (nothing is written to the tree) makes the verifier call go-attestation's
// OpenTPM and go-tpm's transport.OpenTPM where the linker cannot drop them.
func TestVerifierDeviceTPMCodeCaught(t *testing.T) {
	root := testenv.Root(t)
	src := `package main

import (
	"os"

	"github.com/google/go-attestation/attest"
	"github.com/google/go-tpm/tpm2/transport"
)

func init() {
	if os.Getenv("INTACT_DEPS_PROBE_NEVER_SET") == "yes" {
		attest.OpenTPM(nil)
		transport.OpenTPM()
	}
}
`
	ov := newOverlay(t, root)
	ov.add(filepath.Join(root, "cmd/intact-verifier/zz_deps_probe.go"), src)
	hit := verifierDeviceSymbols(t, ov.file())
	for _, want := range []string{
		"github.com/google/go-attestation/attest.OpenTPM",
		"github.com/google/go-attestation/attest.openTPM",
		"github.com/google/go-tpm/tpm2/transport.OpenTPM",
	} {
		found := false
		for _, h := range hit {
			found = found || h == want
		}
		if !found {
			t.Errorf("%s not caught; caught %q", want, hit)
		}
	}
}

func TestParseNM(t *testing.T) {
	got := ParseNM("  4b0d20 T main.main\n         U runtime.foo\n  5c0000 D type:struct { a int }\n\n")
	if want := []string{"main.main", "type:struct { a int }"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseNM = %q, want %q", got, want)
	}
}
