// SPDX-License-Identifier: Apache-2.0

// Package testenv gives tests the external tools and privileges they need.
// A test that needs a tool or root is skipped only on a developer machine
// that lacks it; under CI (CI=true) a missing tool or privilege is a test
// failure, so that nothing is skipped silently where it must run.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (.ci/run sets CI=true).
func InCI() bool { return os.Getenv("CI") != "" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required in CI: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// RequireTool returns the path of the named program, or skips (fails in CI).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not installed (scripts/test.sh installs it)", name)
	}
	return p
}

// RequireRoot skips (fails in CI) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}
