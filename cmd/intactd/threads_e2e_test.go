// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/fanotify/fantest"
)

// TestE2EThreadCredentials: credentials are per thread. A process whose
// leader dropped to uid 1000 while another thread kept root execs an
// unsigned program from the root thread: under "appraise euid=0" that exec
// is root's and must be denied (reading the leader's credentials let it
// run). The other way round, a uid-1000 thread of a root process is not
// root's exec and runs.
func TestE2EThreadCredentials(t *testing.T) {
	w := e2eWorld(t, "gcc")
	if w == nil {
		return
	}
	helper := filepath.Join(w.dir, "threadcred")
	src, err := filepath.Abs("testdata/threadcred.c")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := fantest.Command(t, time.Minute, "gcc", "-O", "-Wall", "-pthread", "-o", helper, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	// uid 1000 must reach the mount (test directories are 0700).
	for d := filepath.Dir(w.mnt); d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(w.dir, 0o755)
	os.Chmod(helper, 0o755)
	unsigned := w.binary("unsigned", "")
	w.start("appraise func=BPRM_CHECK euid=0\n", "--mode", "enforce")

	run := func(leader, thread string) (int, string) {
		cmd := fantest.Command(t, 20*time.Second, helper, unsigned, leader, thread)
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return code, strings.TrimSpace(string(out))
	}
	// Leader uid 1000, exec from a thread that kept root: root's exec.
	if code, out := run("1000", "-1"); code != 126 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("root thread of a uid-1000 leader execs an unsigned program: exit %d (%s), want 126 EPERM", code, out)
	}
	w.awaitRecord("denied", unsigned, "no-label")
	// Leader root, exec from a thread that dropped to uid 1000: not root's.
	if code, out := run("-1", "1000"); code != 0 {
		t.Errorf("uid-1000 thread of a root leader execs a program outside the rule: exit %d (%s), want 0", code, out)
	}
	// And plain processes still: root denied, uid 1000 allowed.
	if code, _ := run("-1", "-1"); code != 126 {
		t.Errorf("root execs an unsigned program: exit %d, want 126", code)
	}
	if code, out := run("1000", "1000"); code != 0 {
		t.Errorf("uid 1000 execs a program outside the rule: exit %d (%s), want 0", code, out)
	}
	for _, r := range w.records("denied") {
		if r["path"] == unsigned && (r["tid"] == nil || r["pid"] == nil || r["tid"] == r["pid"]) {
			t.Errorf("denial record should name the thread and its process: %v", r)
		}
	}
	w.stop()
}
