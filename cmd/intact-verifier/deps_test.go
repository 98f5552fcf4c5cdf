// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/sha256"
	"os/exec"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// The verifier needs no TPM: it must not link the device/simulator TPM
// code, fanotify, or the agent.
func TestNoTPMDependency(t *testing.T) {
	testenv.RequireTool(t, "go")
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"github.com/intactsec/intact/tpm",
		"github.com/intactsec/intact/attest/agent",
		"github.com/intactsec/intact/internal/fanotify",
		"github.com/google/go-tpm-tools/simulator",
		"github.com/google/go-tpm/tpm2/transport/linuxtpm",
	} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == bad {
				t.Errorf("intact-verifier links %s", bad)
			}
		}
	}
}
