// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

// intact policy generate --eventlog learns a boot policy; policy eval
// --eventlog accepts the log it came from (exit 0), names the events of
// another machine's log that break it (exit 1), and a policy that does
// not parse is an error (exit 2), never an accept-all.
func TestBootPolicyCLI(t *testing.T) {
	dir := t.TempDir()
	good := testenv.Testdata(t, "tcg-eventlogs/rhel8-uefi.bin")
	other := testenv.Testdata(t, "tcg-eventlogs/ubuntu-2104-no-secure-boot.bin")
	pol := filepath.Join(dir, "boot.json")
	_, stderr, code := runCLI(t, "policy", "generate", "--eventlog", good, "--out", pol)
	if code != 0 || !strings.Contains(stderr, "secure boot enabled") {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	if out, _, code := runCLI(t, "policy", "eval", "--eventlog", good, pol); code != 0 || !strings.Contains(out, "0 findings") {
		t.Fatalf("eval of the learned log: exit %d: %s", code, out)
	}
	out, _, code := runCLI(t, "policy", "eval", "--eventlog", other, pol)
	if code != 1 || !strings.Contains(out, "pcr 7 event 2 (EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot") || !strings.Contains(out, "secure boot is disabled") {
		t.Fatalf("eval of another machine's log: exit %d: %s", code, out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"intact_boot_policy":1,"bank":"sha256","pcrs":{}}`), 0o644)
	if _, stderr, code := runCLI(t, "policy", "eval", "--eventlog", good, bad); code != 2 || !strings.Contains(stderr, "bad.json: malformed boot policy") {
		t.Fatalf("eval with a policy of no pcrs: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "policy", "generate", "--eventlog", filepath.Join(dir, "none"), "--out", pol); code != 2 || !strings.Contains(stderr, "none") {
		t.Fatalf("generate from a missing log: exit %d: %s", code, stderr)
	}
}
