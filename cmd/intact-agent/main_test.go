// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseRefusesSim: intact-agent serve and measure with --tpm sim,
// in a build without the simulator (this test binary unless built with
// -tags intact_sim), exit 2 with the error naming the tag and a hint,
// and create neither the state directory's identity nor the list. With
// the simulator they get past the check.
func TestReleaseRefusesSim(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	state, list := filepath.Join(dir, "state"), filepath.Join(dir, "list")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	release := tpmOpener().Simulator == nil
	for _, args := range [][]string{
		{"measure", "--tpm", "sim", "--list", list, f},
		{"serve", "--tpm", "sim", "--state", state, "--list", list, "--listen", "127.0.0.1:0"},
	} {
		if !release && args[0] == "serve" {
			continue // it would serve until stopped
		}
		var stderr bytes.Buffer
		code := report(run(args), &stderr)
		refused := code == 2 && stderr.String() == "intact-agent: error: --tpm sim: this build has no TPM simulator (build with -tags intact_sim)\n"+
			"intact-agent: hint: release builds use a TPM device (/dev/tpmrm0) or a swtpm (swtpm:HOST:PORT); for tests and demonstrations: go build -tags intact_sim ./cmd/intact-agent\n"
		if refused != release {
			t.Errorf("intact-agent %s (release build %v): exit %d, refused %v; stderr:\n%s", strings.Join(args, " "), release, code, refused, &stderr)
		}
		if release {
			for _, p := range []string{list, filepath.Join(state, "ak.json")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("intact-agent %s created %s", strings.Join(args, " "), p)
				}
			}
		}
	}
}
