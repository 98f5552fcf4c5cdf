// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/intactsec/intact/policy"
)

func statusText(tgid, pid, uid string) string {
	return "Name:\tx\nTgid:\t" + tgid + "\nPid:\t" + pid + "\nUid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid +
		"\nGid:\t0\t0\t0\t0\nCapEff:\t00000000000000c0\n"
}

func writeStatus(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestThreadCredentials: the credentials come from the accessing thread
// (PROC/TGID/task/TID/status), not from its leader, and only when both
// reads agree on the thread.
func TestThreadCredentials(t *testing.T) {
	proc := t.TempDir()
	// Leader 100 dropped to uid 1000; its thread 101 kept root.
	writeStatus(t, proc+"/100/status", statusText("100", "100", "1000"))
	writeStatus(t, proc+"/100/task/100/status", statusText("100", "100", "1000"))
	writeStatus(t, proc+"/101/status", statusText("100", "101", "0"))
	writeStatus(t, proc+"/100/task/101/status", statusText("100", "101", "0"))
	// 201 says it is a thread of 200, but 200 has no such thread (reused
	// tid in between).
	writeStatus(t, proc+"/201/status", statusText("200", "201", "0"))
	writeStatus(t, proc+"/200/status", statusText("200", "200", "0"))
	// 301's second read names another thread group.
	writeStatus(t, proc+"/301/status", statusText("300", "301", "0"))
	writeStatus(t, proc+"/300/task/301/status", statusText("302", "301", "0"))

	const invalid = ^uint32(0)
	for _, c := range []struct {
		tid  int32
		euid uint32
	}{{100, 1000}, {101, 0}, {201, invalid}, {301, invalid}, {999, invalid}} {
		var s policy.Subject
		readCreds(proc, c.tid, &s)
		if s.EUID != c.euid || s.UID != c.euid {
			t.Errorf("tid %d: uid %d euid %d, want %d", c.tid, s.UID, s.EUID, c.euid)
		}
		if c.euid == 0 && (!s.CapSetuid || !s.CapSetgid) {
			t.Errorf("tid %d: CapEff c0 not read", c.tid)
		}
	}
	if g := tgidOf(proc, 101); g != 100 {
		t.Errorf("tgidOf(101) = %d", g)
	}
}

func TestParseStatusMangled(t *testing.T) {
	good := statusText("1", "2", "3")
	if _, ok := parseStatus([]byte(good)); !ok {
		t.Fatal("good status refused")
	}
	for _, bad := range []string{
		"", "Tgid:\t1\n", "Tgid:\tx\nPid:\t2\nUid:\t0 0 0 0\nGid:\t0 0 0 0\nCapEff:\t0\n",
		"Tgid:\t1\nPid:\t-2\nUid:\t0 0 0 0\nGid:\t0 0 0 0\nCapEff:\t0\n",
		"Tgid:\t1\nPid:\t2\nUid:\t0 0\nGid:\t0 0 0 0\nCapEff:\t0\n",
		"Tgid:\t1\nPid:\t2\nUid:\t0 0 0 0\nGid:\t0 0 0 0\nCapEff:\tzz\n",
		"Tgid:\t1\nPid:\t2\nUid:\t0 0 0 0\nGid:\t0 0 0 0\n",
	} {
		if st, ok := parseStatus([]byte(bad)); ok {
			t.Errorf("accepted %q: %+v", bad, st)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(statusText("1", "2", "3")))
	f.Add([]byte("Tgid:\t1\nPid:\t1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := parseStatus(b)
		if ok && (st.tgid <= 0 || st.pid <= 0) {
			t.Fatalf("ok with ids %d %d", st.tgid, st.pid)
		}
	})
}

// TestFSUUIDRules: fsuuid= conditions are tested against the file
// system's UUID from Config.FSUUID (the daemon's reads it as EVM does);
// a policy with such rules and no UUID source is refused, since its rules
// would never match.
func TestFSUUIDRules(t *testing.T) {
	const pol = "appraise func=BPRM_CHECK fsuuid=0e6b2c9a-4f6f-4b1e-9d4e-1c2b3a4d5e6f\n"
	uuid := []byte{0x0e, 0x6b, 0x2c, 0x9a, 0x4f, 0x6f, 0x4b, 0x1e, 0x9d, 0x4e, 0x1c, 0x2b, 0x3a, 0x4d, 0x5e, 0x6f}
	for _, tc := range []struct {
		name  string
		uuid  []byte
		allow bool
	}{
		{"same file system", uuid, false},
		{"another file system", make([]byte, 16), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, pol, func(c *Config) {
				c.FSUUID = func(*os.File) ([]byte, error) { return tc.uuid, nil }
			})
			if got := h.src.decide(t, h.file(t, "bad", "tampered"), true); got != tc.allow {
				t.Errorf("allow = %v, want %v", got, tc.allow)
			}
		})
	}
	p, err := policy.Parse("p", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(newFakeSource(), Config{Policy: p, Mode: Enforce, Deadline: time.Second, Inspector: &fakeInspector{}}); err == nil {
		t.Error("a policy with fsuuid= rules and no FSUUID source was accepted")
	}
}
