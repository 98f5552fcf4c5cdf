// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/fanotify/fantest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm"
)

// End-to-end tests with the real binaries. Every test runs in a child
// process under `timeout -s KILL` and `unshare -m` (fantest), on an ext4
// image loop-mounted in that private mount namespace: intactd marks only
// that mount. The daemon is a child of the test, killed at cleanup.

const envBin = "INTACT_E2E_BIN"

var buildOnce sync.Once

// binaries builds intactd and intact once (in the parent) and returns
// their directory; children find it in the environment.
func binaries(t *testing.T) string {
	t.Helper()
	testenv.RequireTool(t, "bash")
	testenv.RequireTool(t, "go")
	if d := os.Getenv(envBin); d != "" {
		return d
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "intact-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range []string{"github.com/intactsec/intact/cmd/intactd", "github.com/intactsec/intact/cmd/intact"} {
			// -tags intact_sim: the tests measure into --tpm sim.
			cmd := exec.Command("go", "build", "-tags", tpm.SimBuildTag, "-o", dir, pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", pkg, err, out)
			}
		}
		os.Setenv(envBin, dir)
	})
	d := os.Getenv(envBin)
	if d == "" {
		t.Fatal("binaries were not built")
	}
	return d
}

func TestMain(m *testing.M) {
	code := m.Run()
	if d := os.Getenv(envBin); d != "" && os.Getenv("INTACT_FANTEST_NAME") == "" {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// world is a private mount with keys and a running daemon.
type world struct {
	t       *testing.T
	bin     string
	mnt     string
	dir     string // outside the watched mount: keys, state, logs
	cert    string
	key     string
	daemon  *exec.Cmd
	log     *lockedBuf
	exited  chan error
	socket  string
	stopped bool
	// wrap, when set, is a command line intactd runs under (unshare ...).
	wrap []string
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// setup runs in the child: makes keys (intact keygen) outside the mount.
// e2eWorld starts an end-to-end test: the binaries, the tools it needs,
// a fresh ext4 file system for three minutes in a mount namespace of its
// own (fantest.Mount), and a world on it. It returns nil in the parent
// process, which has nothing more to do: the test ran in the child.
func e2eWorld(t *testing.T, tools ...string) *world {
	t.Helper()
	return e2eWorldOn(t, fantest.Ext4, 3*time.Minute, tools...)
}

// e2eWorldOn is e2eWorld on a file system of kind fs, for timeout.
func e2eWorldOn(t *testing.T, fs fantest.FS, timeout time.Duration, tools ...string) *world {
	t.Helper()
	bin := binaries(t)
	for _, tool := range tools {
		testenv.RequireTool(t, tool)
	}
	mnt, child := fantest.Mount(t, fs, timeout)
	if !child {
		return nil
	}
	return newWorld(t, bin, mnt)
}

func newWorld(t *testing.T, bin, mnt string) *world {
	w := &world{t: t, bin: bin, mnt: mnt, dir: t.TempDir()}
	w.key, w.cert = filepath.Join(w.dir, "k.pem"), filepath.Join(w.dir, "c.der")
	w.intact("keygen", "--key", w.key, "--cert", w.cert)
	return w
}

func (w *world) intact(args ...string) string {
	w.t.Helper()
	cmd := fantest.Command(w.t, 30*time.Second, filepath.Join(w.bin, "intact"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("intact %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// binary copies /bin/true to name on the mount, signed with key (and a
// portable EVM signature) unless key is "".
func (w *world) binary(name, key string) string {
	w.t.Helper()
	p := filepath.Join(w.mnt, name)
	fantest.Copy(w.t, "/bin/true", p, 0o755)
	if key != "" {
		w.intact("sign", "--key", key, "--evm", "portable", p)
	}
	return p
}

func (w *world) start(policyText string, extra ...string) {
	w.t.Helper()
	pol := filepath.Join(w.dir, "policy")
	if err := os.WriteFile(pol, []byte(policyText), 0o600); err != nil {
		w.t.Fatal(err)
	}
	state := filepath.Join(w.dir, "state")
	w.socket = filepath.Join(state, "intactd.sock")
	args := append([]string{"--watch", w.mnt, "--policy", pol, "--cert", w.cert, "--state-dir", state}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	w.t.Cleanup(cancel)
	argv := append(append(append([]string{}, w.wrap...), filepath.Join(w.bin, "intactd")), args...)
	w.daemon = exec.CommandContext(ctx, argv[0], argv[1:]...)
	w.log = &lockedBuf{}
	w.daemon.Stdout, w.daemon.Stderr = w.log, w.log
	if err := w.daemon.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.exited = make(chan error, 1)
	go func() { w.exited <- w.daemon.Wait() }()
	w.t.Cleanup(func() {
		if !w.stopped {
			w.daemon.Process.Kill()
			<-w.exited
		}
		if w.t.Failed() {
			w.t.Logf("intactd log:\n%s", w.log)
		}
	})
	for range 100 {
		if strings.Contains(w.log.String(), "intactd enforcing") {
			return
		}
		select {
		case err := <-w.exited:
			w.stopped = true
			w.t.Fatalf("intactd exited: %v\n%s", err, w.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	w.t.Fatalf("intactd not ready:\n%s", w.log)
}

// stop sends SIGTERM and expects a clean exit.
func (w *world) stop() {
	w.t.Helper()
	w.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.exited:
		w.stopped = true
		if err != nil {
			w.t.Errorf("intactd exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		w.t.Fatal("intactd did not stop after SIGTERM")
	}
}

// run runs path through bash and returns its exit status and output.
func (w *world) run(path string) (int, string) {
	w.t.Helper()
	cmd := fantest.Command(w.t, 20*time.Second, "bash", "-c", path)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		w.t.Fatalf("run %s: %v", path, err)
	}
	return 0, string(out)
}

func (w *world) wantRuns(path string) {
	w.t.Helper()
	if code, out := w.run(path); code != 0 {
		w.t.Errorf("%s: exit %d (%s), want 0", filepath.Base(path), code, strings.TrimSpace(out))
	}
}

func (w *world) wantDenied(path string) {
	w.t.Helper()
	code, out := w.run(path)
	if code != 126 || !strings.Contains(out, "Operation not permitted") {
		w.t.Errorf("%s: exit %d (%s), want 126 and EPERM", filepath.Base(path), code, strings.TrimSpace(out))
	}
}

// records returns the daemon's JSON log records with msg written so far.
// Records follow the answers: wait for one with wantRecord, awaitRecord or
// waitFor.
func (w *world) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(w.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// wantRecord checks that one record with msg names path with verdict. It
// waits up to 10 s for it: the daemon writes its records after it has
// answered, which on a loaded machine can be well after the access
// returned.
func (w *world) wantRecord(msg, path, verdict string) {
	w.t.Helper()
	var found map[string]any
	testenv.Until(10*time.Second, func() bool {
		for _, r := range w.records(msg) {
			if r["path"] == path && r["verdict"] == verdict {
				found = r
				return true
			}
		}
		return false
	})
	switch r := found; {
	case r == nil:
		w.t.Errorf("no %q record for %s with verdict %s", msg, path, verdict)
	case r["pid"] == nil || r["exe"] == nil || r["exe"] == "" || r["rule"] == nil || r["reason"] == nil:
		w.t.Errorf("record lacks pid, exe, rule or reason: %v", r)
	}
}

func (w *world) status() map[string]any {
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
	var s struct {
		Stats map[string]any `json:"stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		w.t.Fatal(err)
	}
	return s.Stats
}

// tamperedSet makes the executables the appraisal tests use: a signed
// one, one with a byte changed after signing, one without a label, one
// signed by a key intactd does not trust, and one made setuid after its
// EVM signature was written.
func (w *world) tamperedSet() (good, changed, nolabel, unknown, setuid string) {
	other := filepath.Join(w.dir, "other.pem")
	w.intact("keygen", "--key", other, "--cert", filepath.Join(w.dir, "other.der"))
	good = w.binary("good", w.key)
	changed = w.binary("changed", w.key)
	flipByte(w.t, changed, 1000)
	nolabel = w.binary("nolabel", "")
	unknown = w.binary("unknown", other)
	setuid = w.binary("setuid", w.key)
	if err := os.Chmod(setuid, 0o755|os.ModeSetuid); err != nil {
		w.t.Fatal(err)
	}
	return
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

const appraisePolicy = `# exec needs a valid signature (and EVM, when present)
appraise func=BPRM_CHECK appraise_type=imasig
appraise func=FILE_CHECK fowner=0 fsmagic=0xef53
`

func TestE2EEnforce(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	good, changed, nolabel, unknown, setuid := w.tamperedSet()
	data := filepath.Join(w.mnt, "data")
	os.WriteFile(data, []byte("configuration\n"), 0o644)
	w.intact("hash", data)
	tampered := filepath.Join(w.mnt, "tampered")
	os.WriteFile(tampered, []byte("configuration\n"), 0o644)
	w.intact("hash", tampered)
	os.WriteFile(tampered, []byte("configuratioN\n"), 0o644)

	good2 := w.binary("good2", w.key) // made before the daemon watches
	w.start(appraisePolicy, "--mode", "enforce")
	w.wantRuns(good)
	w.wantRuns(good) // warm: the kernel's ignore mark answers
	w.wantDenied(changed)
	w.wantDenied(nolabel)
	w.wantDenied(unknown)
	w.wantDenied(setuid)
	w.wantRecord("denied", changed, "content-changed")
	w.wantRecord("denied", nolabel, "no-label")
	w.wantRecord("denied", unknown, "unknown-key")
	w.wantRecord("denied", setuid, "metadata-changed")

	// FILE_CHECK: reading a tampered file fails, an intact one works.
	if code, out := w.run("cat " + data); code != 0 {
		t.Errorf("cat intact data: exit %d %s", code, out)
	}
	if code, out := w.run("cat " + tampered); code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("cat tampered data: exit %d %q, want EPERM", code, out)
	}
	w.wantRecord("denied", tampered, "content-changed")

	// Changed while cached (in the kernel and in userspace): one byte
	// written in place; the next exec is appraised again.
	flipByte(t, good, 2000)
	w.wantDenied(good)
	w.wantRecord("denied", good, "content-changed")

	// Relabelled while cached: chmod does not clear the kernel's ignore
	// mask; the notification group removes it.
	w.wantRuns(good2)
	w.wantRuns(good2)
	inv := w.status()["invalidations"].(float64)
	if err := os.Chmod(good2, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	// The group's invalidation is asynchronous: wait for it (was a
	// 100 ms sleep, which a loaded machine can outlast).
	testenv.Until(10*time.Second, func() bool { return w.status()["invalidations"].(float64) > inv })
	w.wantDenied(good2)
	w.wantRecord("denied", good2, "metadata-changed")

	st := w.status()
	if st["denials"].(float64) < 7 || st["kernel_cache_marks"].(float64) < 1 || st["timeouts"].(float64) != 0 {
		t.Errorf("status = %v", st)
	}
	w.stop()
}

func TestE2ELogMode(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	good, changed, nolabel, unknown, setuid := w.tamperedSet()
	w.start(appraisePolicy, "--mode", "log")
	for _, p := range []string{good, changed, nolabel, unknown, setuid} {
		w.wantRuns(p)
	}
	w.wantRecord("would deny", changed, "content-changed")
	w.wantRecord("would deny", nolabel, "no-label")
	w.wantRecord("would deny", unknown, "unknown-key")
	w.wantRecord("would deny", setuid, "metadata-changed")
	for _, r := range w.records("would deny") {
		if r["path"] == good {
			t.Errorf("would-deny record for the good binary: %v", r)
		}
		if r["mode"] != "log" || r["decision"] != "allow" {
			t.Errorf("log-mode record = %v", r)
		}
	}
	// One record per hook: the exec and its open.
	if st := w.status(); st["would_deny"].(float64) != 8 || st["denials"].(float64) != 0 {
		t.Errorf("status = %v", st)
	}
	w.stop()
}

func TestE2EMeasure(t *testing.T) {
	w := e2eWorld(t, "swtpm")
	if w == nil {
		return
	}
	sw := tpmtest.Start(t, tpmtest.Options{})
	prog := w.binary("measured", w.key)
	other := w.binary("unmeasured-by-name", "")
	w.start("measure func=BPRM_CHECK mask=MAY_EXEC\n", "--tpm", sw.Spec(), "--mode", "enforce")
	w.wantRuns(prog)
	w.wantRuns(prog) // measured once per file version
	w.wantRuns(other)
	w.stop() // the TPM serves one client at a time

	raw, err := os.ReadFile(filepath.Join(w.dir, "state", measurementList))
	if err != nil {
		t.Fatal(err)
	}
	list, err := mlog.ParseBinary(raw, mlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range list.UnverifiedRecords() {
		fs, err := r.Fields()
		if err != nil || len(fs) < 2 {
			t.Fatalf("record fields: %v %v", fs, err)
		}
		paths = append(paths, strings.TrimRight(string(fs[1].Data), "\x00"))
	}
	// The list starts as every list intact writes (mlog.Measurer).
	if len(paths) != 4 || paths[0] != mlog.BootAggregateName || paths[1] != mlog.BootRecordName || paths[2] != prog || paths[3] != other {
		t.Fatalf("measured paths = %q, want [%s %s %s %s]", paths, mlog.BootAggregateName, mlog.BootRecordName, prog, other)
	}
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	pcrs, err := tp.ReadPCRs(crypto.SHA256, []int{mlog.DefaultPCR})
	if err != nil {
		t.Fatal(err)
	}
	want, err := list.Compute(digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pcrs[mlog.DefaultPCR], want[digest.SHA256][mlog.DefaultPCR]) {
		t.Fatalf("PCR %d = %x, the list replays to %x", mlog.DefaultPCR, pcrs[mlog.DefaultPCR], want[digest.SHA256][mlog.DefaultPCR])
	}
	if _, err := list.Replay(digest.PCRs{digest.SHA256: {mlog.DefaultPCR: pcrs[mlog.DefaultPCR]}}); err != nil {
		t.Fatalf("replay against the TPM: %v", err)
	}
}

// TestE2ELoad runs 8 processes that execute signed binaries and open and
// rewrite files in a loop for 30 s under the daemon; at 25 s the daemon is
// killed with SIGKILL. Every worker must finish on time with every
// operation answered, and the mount must work afterwards.
func TestE2ELoad(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	const workers = 8
	for i := range workers {
		w.binary(fmt.Sprintf("bin%d", i), w.key)
		d := filepath.Join(w.mnt, fmt.Sprintf("w%d", i))
		os.Mkdir(d, 0o755)
		os.Chown(d, 1000, 1000)
		os.WriteFile(filepath.Join(d, "scratch"), nil, 0o644)
		os.Chown(filepath.Join(d, "scratch"), 1000, 1000)
	}
	w.start("appraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK fowner=0\naudit func=FILE_CHECK fowner=1000\n",
		"--mode", "enforce")
	// Each worker: exec its signed binary and a shared one, write its own
	// scratch file (owned by uid 1000: no appraisal, but every write
	// invalidates), read it back. Any failure or a stuck step shows.
	script := `end=$(( $(date +%s) + 30 )); n=0
while [ $(date +%s) -lt $end ]; do
  "$M/bin$I" || { echo "exec own failed"; exit 1; }
  "$M/bin$(( (n % 8) ))" || { echo "exec shared failed"; exit 1; }
  echo "$n" > "$M/w$I/scratch" || { echo "write failed"; exit 1; }
  cat "$M/w$I/scratch" >/dev/null || { echo "read failed"; exit 1; }
  n=$((n+1))
done
echo "iterations $n"`
	type result struct {
		out string
		err error
	}
	results := make(chan result, workers)
	start := time.Now()
	for i := range workers {
		cmd := exec.Command("timeout", "-s", "KILL", "45", "bash", "-c", script)
		cmd.Env = append(os.Environ(), "M="+w.mnt, fmt.Sprintf("I=%d", i))
		go func() {
			out, err := cmd.CombinedOutput()
			results <- result{string(out), err}
		}()
	}
	time.Sleep(25 * time.Second) // time under test: 25 s of load without a missed deadline
	st := w.status()
	t.Logf("status at 25 s: %v", st)
	if st["timeouts"].(float64) != 0 || st["errors"].(float64) != 0 || st["denials"].(float64) != 0 {
		t.Errorf("under load: timeouts %v errors %v denials %v, want 0", st["timeouts"], st["errors"], st["denials"])
	}
	if st["decisions"].(float64) < 100 {
		t.Errorf("only %v decisions in 25 s", st["decisions"])
	}
	w.daemon.Process.Kill() // SIGKILL mid-load: the kernel allows what is pending
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("intactd did not finish exiting after SIGKILL (fanotify group release order)")
	}
	w.stopped = true
	total := 0
	for range workers {
		select {
		case r := <-results:
			var n int
			if r.err != nil || !strings.Contains(r.out, "iterations") {
				t.Errorf("worker: %v %s", r.err, r.out)
				continue
			}
			fmt.Sscanf(r.out[strings.Index(r.out, "iterations"):], "iterations %d", &n)
			total += n
		case <-time.After(30 * time.Second):
			t.Fatal("a worker is stuck")
		}
	}
	t.Logf("%d workers, %d iterations in %s", workers, total, time.Since(start).Round(time.Millisecond))
	if el := time.Since(start); el > 40*time.Second {
		t.Errorf("workers took %s for a 30 s loop", el)
	}
	// The machine (here: the mount) works without the daemon.
	w.wantRuns(filepath.Join(w.mnt, "bin0"))
	if code, out := w.run("cat " + filepath.Join(w.mnt, "w0", "scratch")); code != 0 {
		t.Errorf("read after the daemon died: %d %s", code, out)
	}
}

// TestE2EDeadline: a decision that takes longer than the deadline (hashing
// a large file) gets the fail verdict at the deadline, deny or allow.
func TestE2EDeadline(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	big := filepath.Join(w.mnt, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("intact"), 1<<20)
	for range 25 { // 150 MiB: well over a millisecond to hash
		f.Write(chunk)
	}
	f.Close()
	w.intact("hash", big)
	for _, verdict := range []string{"deny", "allow"} {
		w.start("appraise func=FILE_CHECK\n", "--deadline", "1ms", "--fail-verdict", verdict, "--no-kernel-cache")
		code, out := w.run("head -c 1 " + big)
		switch {
		case verdict == "deny" && (code == 0 || !strings.Contains(out, "Operation not permitted")):
			t.Errorf("fail verdict deny: exit %d %q", code, out)
		case verdict == "allow" && code != 0:
			t.Errorf("fail verdict allow: exit %d %q", code, out)
		}
		testenv.Until(10*time.Second, func() bool {
			return w.status()["timeouts"].(float64) >= 1 && len(w.records("decision deadline passed")) > 0
		})
		if st := w.status(); st["timeouts"].(float64) < 1 {
			t.Errorf("%s: status = %v, want a deadline hit", verdict, st)
		}
		if len(w.records("decision deadline passed")) == 0 {
			t.Errorf("%s: no deadline record", verdict)
		}
		w.stop()
	}
}
