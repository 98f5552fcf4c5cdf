// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFirmwareLog: the firmware's boot log is served only with the
// machine's own TPM; a simulator's or swtpm's PCRs 0-9 never match it.
func TestFirmwareLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "binary_bios_measurements")
	if err := os.WriteFile(log, []byte("log"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec, path, want string
	}{
		{"", log, log},
		{"/dev/tpmrm0", log, log},
		{"/dev/tpm0", log, log},
		{"sim", log, ""},
		{"swtpm:127.0.0.1:2321", log, ""},
		{"", log + ".missing", ""},
	} {
		if got := firmwareLog(c.spec, c.path); got != c.want {
			t.Errorf("firmwareLog(%q, %q) = %q, want %q", c.spec, c.path, got, c.want)
		}
	}
}
