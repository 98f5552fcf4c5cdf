// SPDX-License-Identifier: Apache-2.0

package tpmtest_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/tpmtest"
)

// TestStart: the harness's swtpm answers tpm2-tools, keeps state in its
// directory, and two can run at once on different ports.
func TestStart(t *testing.T) {
	a := tpmtest.Start(t, tpmtest.Options{})
	b := tpmtest.Start(t, tpmtest.Options{NeedInit: true})
	if a.Port == b.Port || a.CtrlPort != a.Port+1 {
		t.Fatalf("ports: a %d/%d, b %d/%d", a.Port, a.CtrlPort, b.Port, b.CtrlPort)
	}
	out := a.Tool(t, "tpm2_getcap", "properties-fixed")
	if !strings.Contains(out, `value: "IBM"`) {
		t.Fatalf("tpm2_getcap on swtpm:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(a.StateDir, "tpm2-00.permall")); err != nil {
		t.Errorf("no state in %s: %v", a.StateDir, err)
	}
	if !strings.HasPrefix(a.Spec(), "swtpm:127.0.0.1:") || !strings.Contains(a.TCTI(), "port="+strconv.Itoa(a.Port)) {
		t.Errorf("spec %q, tcti %q", a.Spec(), a.TCTI())
	}
	if _, err := a.TryTool(t, "tpm2_pcrread", "nosuchbank:0"); err == nil {
		t.Error("TryTool reported success for a failing tool")
	}
}

// TestCleanupStops: after the subtest's cleanup the swtpm is gone.
func TestCleanupStops(t *testing.T) {
	var port int
	t.Run("run", func(t *testing.T) {
		port = tpmtest.Start(t, tpmtest.Options{}).Port
	})
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		c.Close()
		t.Fatalf("swtpm still listening on %d after cleanup", port)
	}
}
