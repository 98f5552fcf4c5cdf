package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/fanotify/fantest"
	"github.com/intactsec/intact/internal/testenv"
)

// Attack tests (issue 11): each plays a local user trying to get around,
// stall or fool intactd. Like every e2e test they run in a private mount
// namespace on an ext4 image the test mounts; intactd marks only that
// file system.

// exitOf runs cmd and returns its exit status and output.
func exitOf(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	return 0, string(out)
}

// wantExit runs argv and checks that it exits 0 (want "") or 126 with
// EPERM (want "denied").
func wantExit(t *testing.T, want string, argv ...string) {
	t.Helper()
	code, out := exitOf(t, fantest.Command(t, 20*time.Second, argv[0], argv[1:]...))
	switch want {
	case "":
		if code != 0 {
			t.Errorf("%q: exit %d (%s), want 0", argv, code, strings.TrimSpace(out))
		}
	case "denied":
		if code != 126 || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("%q: exit %d (%s), want 126 and EPERM", argv, code, strings.TrimSpace(out))
		}
	}
}

// fullStatus returns the daemon's whole status reply.
func (w *world) fullStatus() map[string]any {
	w.t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", w.socket)
		}}}
	resp, err := c.Get("http://intactd/v1/status")
	if err != nil {
		w.t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	var s map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		w.t.Fatal(err)
	}
	return s
}

// waitFor reports whether cond holds within d.
func waitFor(d time.Duration, cond func() bool) bool { return testenv.Until(d, cond) }

// openToAll makes the directories above the mount searchable, so that an
// unprivileged user reaches the files on it.
func openToAll(t *testing.T, mnt string) {
	t.Helper()
	for d := filepath.Dir(mnt); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2ESandboxedDaemon (issue 11 item 1): the shipped unit runs intactd
// in a mount namespace of its own (ProtectSystem=strict, ProtectHome,
// PrivateTmp: its mounts are read-only copies). Every other process execs
// from the original mounts; enforcement must reach them. With mount marks
// (FAN_MARK_MOUNT) only the daemon's copies were marked and an unsigned
// program ran.
func TestE2ESandboxedDaemon(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	good := w.binary("good", w.key)
	unsigned := w.binary("unsigned", "")
	// As systemd does for ProtectSystem=strict: a new mount namespace in
	// which the watched mount is a read-only copy.
	w.wrap = []string{"unshare", "-m", "--propagation", "slave", "sh", "-c",
		`mount -o remount,bind,ro "$0" && exec "$@"`, w.mnt}
	w.start(appraisePolicy, "--mode", "enforce")
	ours, _ := os.Readlink("/proc/self/ns/mnt")
	theirs, err := os.Readlink("/proc/" + strconv.Itoa(w.daemon.Process.Pid) + "/ns/mnt")
	if err != nil || theirs == ours {
		t.Fatalf("intactd is not in a mount namespace of its own: %q vs ours %q (%v)", theirs, ours, err)
	}
	w.wantRuns(good)
	w.wantDenied(unsigned)
	w.wantRecord("denied", unsigned, "no-label")
	w.stop()
}

// TestE2EOtherNamespaces (issue 11 item 2): no user gets around the
// daemon with a mount of the watched file system it did not see: a bind
// mount made after start, or `unshare -Urm` as an unprivileged user (its
// mounts are copies, and it may bind mount them again). Mounts of other
// file systems under a watched path are not enforced: intactd says so,
// at start and when they appear, in its log and its status.
func TestE2EOtherNamespaces(t *testing.T) {
	w := e2eWorld(t, "setpriv")
	if w == nil {
		return
	}
	openToAll(t, w.mnt)
	good := w.binary("good", w.key)
	unsigned := w.binary("unsigned", "")
	pre := filepath.Join(w.mnt, "pre")
	os.Mkdir(pre, 0o755)
	if err := unix.Mount("intact-nested", pre, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatal(err)
	}
	w.start(appraisePolicy, "--mode", "enforce")

	// A bind mount made after start, by root in the daemon's namespace.
	bind := filepath.Join(w.dir, "bind")
	os.Mkdir(bind, 0o755)
	if err := unix.Mount(w.mnt, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(bind, unix.MNT_DETACH)
	w.wantRuns(filepath.Join(bind, "good"))
	w.wantDenied(filepath.Join(bind, "unsigned"))

	// nobody in a user and mount namespace of its own: the copy of the
	// mount, and a bind mount of it made there.
	asNobody := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		"unshare", "-Urm", "bash", "-c"}
	wantExit(t, "", append(asNobody, good)...)
	wantExit(t, "denied", append(asNobody, unsigned)...)
	wantExit(t, "denied", append(asNobody, `mount --rbind "$0" /mnt && /mnt/unsigned`, w.mnt)...)
	wantExit(t, "", append(asNobody, `mount --rbind "$0" /mnt && /mnt/good`, w.mnt)...)
	if t.Failed() {
		return
	}

	// Nested mounts of another file system: reported, not enforced.
	post := filepath.Join(w.mnt, "post")
	os.Mkdir(post, 0o755)
	if err := unix.Mount("intact-nested", post, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatal(err)
	}
	reported := func(p string) bool {
		for _, r := range w.records("nested mount not enforced: another file system under a watched path (add it to watch to enforce on it)") {
			if r["mount"] == p && r["fstype"] == "tmpfs" {
				return true
			}
		}
		return false
	}
	if !waitFor(10*time.Second, func() bool { return reported(pre) && reported(post) }) {
		t.Errorf("nested mounts %s and %s not reported", pre, post)
	}
	var got []string
	for _, m := range w.fullStatus()["uncovered_mounts"].([]any) {
		got = append(got, m.(string))
	}
	if !slices.Contains(got, pre) || !slices.Contains(got, post) {
		t.Errorf("status uncovered_mounts = %q, want %s and %s", got, pre, post)
	}
	// What the warning says: an unsigned program there is not checked.
	fantest.Copy(t, "/bin/true", filepath.Join(post, "unsigned"), 0o755)
	w.wantRuns(filepath.Join(post, "unsigned"))
	w.stop()
}

// TestE2EInertPolicy (issue 11 item 8): a policy none of whose rules can
// act would start "enforcing" and enforce nothing. intactd refuses it,
// naming why, unless --allow-inert-policy is given.
func TestE2EInertPolicy(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	unsigned := w.binary("unsigned", "")
	for _, tc := range []struct{ name, text, why string }{
		{"empty", "", "it has no rules (empty, or only comments)"},
		{"comments", "# appraise func=BPRM_CHECK\n\n", "it has no rules (empty, or only comments)"},
		{"dont_appraise", "dont_appraise fsmagic=0xef53\ndont_measure\n", "a dont_appraise rule acts on nothing by itself"},
		{"write mask", "appraise func=FILE_CHECK mask=MAY_WRITE\n", "a write (MAY_WRITE, MAY_APPEND) is never seen"},
		{"shadowed", "dont_appraise\nappraise func=BPRM_CHECK appraise_type=imasig\n", "always decided first by line 1"},
	} {
		pol := filepath.Join(w.dir, tc.name+".policy")
		os.WriteFile(pol, []byte(tc.text), 0o600)
		cmd := fantest.Command(t, 20*time.Second, filepath.Join(w.bin, "intactd"), "--watch", w.mnt, "--policy", pol,
			"--cert", w.cert, "--state-dir", filepath.Join(w.dir, "state-"+tc.name))
		code, out := exitOf(t, cmd)
		if code != 1 || !strings.Contains(out, "intactd: error: "+pol+": the policy cannot act on any access intactd sees") ||
			!strings.Contains(out, tc.why) || strings.Contains(out, "intactd enforcing") {
			t.Errorf("%s: exit %d, output:\n%s\nwant exit 1 and an error saying %q", tc.name, code, out, tc.why)
		}
	}
	// Explicitly allowed: it starts, says so, and enforces nothing.
	w.start("dont_appraise\n", "--allow-inert-policy")
	found := waitFor(10*time.Second, func() bool {
		for _, r := range w.records("starting with a policy that enforces nothing (--allow-inert-policy)") {
			if strings.Contains(r["err"].(string), "acts on nothing by itself") {
				return true
			}
		}
		return false
	})
	if !found {
		t.Errorf("no warning for the inert policy")
	}
	w.wantRuns(unsigned)
	w.stop()
}

// startLimited starts the daemon under a hard RLIMIT_NOFILE of n (prlimit):
// exhausting its descriptors is then cheap.
func (w *world) startLimited(n int, policyText string, extra ...string) {
	w.t.Helper()
	w.wrap = []string{"prlimit", fmt.Sprintf("--nofile=%d:%d", n, n), "--"}
	w.start(policyText, extra...)
	w.wrap = nil
}

// TestE2EMetricsConnectionFlood (issue 13 item 4): an unprivileged user
// opens hundreds of idle connections to the metrics port of a daemon with
// few descriptors. Every listener is capped, so the daemon keeps its
// descriptors, keeps running and keeps enforcing. Before, the accepted
// connections exhausted its descriptors, the fanotify read failed with
// EMFILE, intactd exited and the unsigned program ran.
func TestE2EMetricsConnectionFlood(t *testing.T) {
	w := e2eWorld(t, "prlimit", "setpriv")
	if w == nil {
		return
	}
	good := w.binary("good", w.key)
	unsigned := w.binary("unsigned", "")
	w.startLimited(128, appraisePolicy, "--metrics-listen", "127.0.0.1:0")
	var addr string
	waitFor(10*time.Second, func() bool {
		for _, r := range w.records("serving metrics") {
			addr = strings.TrimSuffix(strings.TrimPrefix(r["addr"].(string), "http://"), "/metrics")
		}
		return addr != ""
	})
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("metrics address %q: %v", addr, err)
	}
	// nobody holds 400 idle connections (bash's /dev/tcp), then waits.
	const conns = 400
	flood := fantest.Command(t, 2*time.Minute, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		"bash", "-c", `ulimit -n 1024; n=0; for i in $(seq `+strconv.Itoa(conns)+`); do exec {fd}<>/dev/tcp/$0/$1 && n=$((n+1)); done; echo "open $n"; exec sleep 60`, host, port)
	out, err := flood.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { flood.Process.Kill(); flood.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "open ") {
		t.Fatalf("flood: %q", line)
	}
	t.Logf("nobody holds %s connections", strings.TrimSpace(strings.TrimPrefix(line, "open ")))
	select {
	case err := <-w.exited:
		w.stopped = true
		t.Fatalf("intactd exited under the connection flood: %v", err)
	default:
	}
	w.wantRuns(good)
	w.wantDenied(unsigned)
	s := w.fullStatus()
	if s["healthy"] != true {
		t.Errorf("status under the flood: %v", s)
	}
	// The daemon holds at most its cap of metrics connections.
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(w.daemon.Process.Pid) + "/fd")
	if len(fds) > 100 {
		t.Errorf("intactd holds %d descriptors under the flood", len(fds))
	}
	w.stop()
}

// TestE2EEventFdExhaustion (issue 13 item 4): many accesses pending at
// once on a daemon with few descriptors: the kernel cannot open their
// event fds (EMFILE) and denies those accesses itself. The daemon must
// survive it (release its spare descriptors, count and log it), never
// exit, and enforce as before once the storm is over.
func TestE2EEventFdExhaustion(t *testing.T) {
	w := e2eWorld(t, "prlimit")
	if w == nil {
		return
	}
	good := w.binary("good", w.key)
	unsigned := w.binary("unsigned", "")
	// A file whose appraisal takes a while: accesses pile up behind it
	// (one decision per inode at a time), each event holding a
	// descriptor of the daemon.
	big := filepath.Join(w.mnt, "big")
	if err := os.WriteFile(big, []byte("a sparse gigabyte"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<30); err != nil { // a hole: about a second of hashing anywhere
		t.Fatal(err)
	}
	w.intact("hash", big)
	w.startLimited(48, "appraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK fsmagic=0xef53\n",
		"--no-kernel-cache", "--deadline", "20s")
	script := `for i in $(seq 96); do head -c1 "$0" >/dev/null 2>&1 & done; wait`
	cmd := fantest.Command(t, 90*time.Second, "bash", "-c", script, big)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("storm: %v %s", err, out)
	}
	w.wantRuns(good)
	w.wantDenied(unsigned)
	select {
	case err := <-w.exited:
		w.stopped = true
		t.Fatalf("intactd exited after the descriptor storm: %v", err)
	default:
	}
	s := w.fullStatus()
	if n, _ := s["event_fd_errors"].(float64); n < 1 {
		t.Fatalf("no event fd error: the storm did not exhaust the daemon's descriptors (status %v)", s)
	}
	t.Logf("accesses denied by the kernel for want of a descriptor: %v", s["event_fd_errors"])
	if !waitFor(10*time.Second, func() bool {
		return len(w.records("out of file descriptors: the kernel denied accesses intactd could not open; spare descriptors released")) > 0
	}) {
		t.Errorf("the exhaustion was not logged")
	}
	w.wantRuns(good)
	w.wantDenied(unsigned)
	if s := w.fullStatus(); s["healthy"] != true {
		t.Errorf("status after the storm: %v", s)
	}
	w.stop()
}

// TestE2EBigFileBesideSmall (issue 11 item 6): four concurrent reads of a
// signed 1 GiB file under a FILE_CHECK rule with --deadline 300ms time
// out (its hashing takes longer), but two small signed executables run
// behind them: none is denied. Each deadline record names the path and
// the executable. Once hashed, the big file's verdict is cached.
func TestE2EBigFileBesideSmall(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	small1, small2 := w.binary("small1", w.key), w.binary("small2", w.key)
	big := filepath.Join(w.mnt, "big")
	if err := os.WriteFile(big, []byte("a sparse gigabyte"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<30); err != nil { // a hole: no space, all the hashing
		t.Fatal(err)
	}
	w.intact("hash", big)
	w.start("appraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK fsmagic=0xef53\n",
		"--deadline", "300ms")
	base, _ := w.status()["events"].(float64)
	var readers []*exec.Cmd
	for range 4 {
		c := fantest.Command(t, time.Minute, "head", "-c1", big)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, c)
	}
	if !waitFor(10*time.Second, func() bool {
		n, _ := w.status()["events"].(float64)
		return n >= base+4
	}) {
		t.Fatalf("the big file's reads did not reach the daemon: %v", w.status())
	}
	w.wantRuns(small1)
	w.wantRuns(small2)
	for i, c := range readers {
		if err := c.Wait(); err == nil {
			t.Errorf("reader %d: the big file was read before its appraisal finished", i)
		}
	}
	// Every deadline record is the big file's, with the reader named.
	head, _ := exec.LookPath("head")
	head, _ = filepath.EvalSymlinks(head)
	var recs []map[string]any
	waitFor(10*time.Second, func() bool { recs = w.records("decision deadline passed"); return len(recs) >= 4 })
	if len(recs) < 4 {
		t.Errorf("%d deadline records, want 4 or more", len(recs))
	}
	for _, r := range recs {
		if r["path"] != big || r["exe"] != head {
			t.Errorf("deadline record %v: want path %s and exe %s", r, big, head)
		}
	}
	for _, r := range w.records("denied") {
		if r["path"] == small1 || r["path"] == small2 {
			t.Errorf("a small executable was denied: %v", r)
		}
	}
	if n, _ := w.status()["large_file_decisions"].(float64); n < 1 {
		t.Errorf("no large-file decision counted: %v", w.status())
	}
	// The hashing went on: the verdict is cached, and a read is allowed.
	if !waitFor(60*time.Second, func() bool {
		return fantest.Command(t, 10*time.Second, "head", "-c1", big).Run() == nil
	}) {
		t.Errorf("the big file is still not readable after its hashing")
	}
	w.stop()
}
