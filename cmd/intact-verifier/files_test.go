// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientFilesNamed: the client's uploads name their file when it is
// missing, endless (/dev/zero: refused at once) or refused by the verifier
// (a policy that does not parse: the old code printed the verifier's
// reason without saying which file).
func TestClientFilesNamed(t *testing.T) {
	r := newRig(t)
	missing := filepath.Join(r.dir, "missing.json")
	bad := filepath.Join(r.dir, "bad-policy.json")
	os.WriteFile(bad, []byte(`{"intact_runtime_policy": 1, "digests": {"relative/path": ["sha256:00"]}}`), 0o644)
	for _, tc := range []struct {
		args []string
		file string
	}{
		{[]string{"policy", "add", "p", missing}, missing},
		{[]string{"policy", "add", "p", "/dev/zero"}, "/dev/zero"},
		{[]string{"policy", "add", "p", bad}, bad},
		{[]string{"agents", "add", "m", "127.0.0.1:1", "--policy", "p", "--cert", missing}, missing},
		{[]string{"agents", "add", "m", "127.0.0.1:1", "--policy", "p", "--cert", "/dev/zero"}, "/dev/zero"},
	} {
		out := r.run(2, tc.args...)
		if !strings.Contains(out, tc.file) || !strings.HasPrefix(out, "intact-verifier: error: ") {
			t.Errorf("intact-verifier %v: %q does not name %s", tc.args, out, tc.file)
		}
	}
}
