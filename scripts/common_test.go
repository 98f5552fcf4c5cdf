// SPDX-License-Identifier: Apache-2.0

package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

// TestRequireGo: the scripts refuse a Go older than go.mod's with a clear
// message (exit 2), and accept the same or a newer one.
func TestRequireGo(t *testing.T) {
	bash := testenv.RequireTool(t, "bash")
	common, _ := filepath.Abs("common.sh")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.26.8\n"), 0o644)
	for _, tc := range []struct {
		have string
		code int
	}{
		{"go1.21.0", 2}, {"go1.26.7", 2}, {"go1.26.8", 0}, {"go1.27.1 X:nocoverageredesign", 0}, {"go1.100.0", 0}, {"devel go1.27-abcdef", 0},
	} {
		bin := t.TempDir()
		os.WriteFile(filepath.Join(bin, "go"), []byte("#!/bin/sh\necho '"+tc.have+"'\n"), 0o755)
		cmd := exec.Command(bash, "-c", `. "$1"; require_go prog "$2"; echo ok`, "-", common, dir)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code {
			t.Errorf("go %s: exit %d, want %d\n%s", tc.have, code, tc.code, out)
		}
		if tc.code == 2 && !strings.Contains(string(out), "prog: error: intact needs Go 1.26.8 or newer") {
			t.Errorf("go %s: message %q", tc.have, out)
		}
	}
}

// TestNoColourOffTerminal: headings carry no escape codes when the output
// is a pipe or a file, as in CI logs.
func TestNoColourOffTerminal(t *testing.T) {
	testenv.RequireTool(t, "bash")
	common, _ := filepath.Abs("common.sh")
	out, err := exec.Command("bash", "-c", `. "$1"; printf '%s== x%s\n' "$bold" "$plain"`, "-", common).CombinedOutput()
	if err != nil || string(out) != "== x\n" {
		t.Errorf("off a terminal: %q, %v", out, err)
	}
	for _, f := range []string{"quickstart.sh", "demo.sh", "test.sh"} {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), `\033`) || strings.Contains(string(b), `\e[`) {
			t.Errorf("%s writes escape codes itself, not through common.sh", f)
		}
	}
}
