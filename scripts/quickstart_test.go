// SPDX-License-Identifier: Apache-2.0

// Package scripts holds the tests of the repository's scripts.
package scripts

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/fanotify/fantest"
	"github.com/intactsec/intact/internal/testenv"
)

// TestQuickstart runs scripts/quickstart.sh as a new user would (the README's
// command), then does what its printed text says: tampers with a protected
// program and runs it (the exec is denied with EPERM; a denied exec alone
// leaves the machine trusted; run from bash, which then reads the file, the
// verifier turns the agent failed naming the file), and stops it (nothing
// left mounted or running).
//
// It runs in a private mount namespace and a pid namespace of its own under
// a hard timeout (fantest.Isolated): the demo mount is invisible outside,
// and the daemons die with the test however it ends.
func TestQuickstart(t *testing.T) {
	for _, tool := range []string{"bash", "go", "mkfs.ext4", "losetup", "mountpoint", "setsid"} {
		testenv.RequireTool(t, tool)
	}
	if !fantest.Isolated(t, 4*time.Minute) {
		return
	}
	script, err := filepath.Abs("quickstart.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "demo")
	mnt := filepath.Join(dir, "protected")
	hello := filepath.Join(mnt, "bin", "hello")
	run := func(d time.Duration, name string, args ...string) (int, string) {
		t.Helper()
		cmd := fantest.Command(t, d, name, args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		case err != nil:
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return 0, string(out)
	}
	quickstart := func(args ...string) (int, string) {
		t.Helper()
		return run(3*time.Minute, script, args...)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			code, out := quickstart("stop", dir)
			t.Logf("cleanup: quickstart stop: exit %d\n%s", code, out)
		}
		if t.Failed() {
			for _, f := range []string{"intactd.log", "verifier.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("%s:\n%s", f, b)
			}
		}
	})

	start := time.Now()
	code, out := quickstart("start", dir, "--verifier-listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0")
	t.Logf("quickstart (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if code != 0 {
		t.Fatalf("quickstart: exit %d", code)
	}
	up := time.Since(start)
	env := readEnv(t, filepath.Join(dir, "quickstart.env"))
	for _, want := range []string{"the quickstart is running", "agents show demo", "intact status --socket",
		"echo 'echo tampered' >> " + hello, "grep '\"denied\"' ", "digest-mismatch", "quickstart.sh stop " + dir, "state:        trusted"} {
		if !strings.Contains(out, want) {
			t.Errorf("the quickstart's output lacks %q", want)
		}
	}
	vbin := filepath.Join(dir, "bin", "intact-verifier")
	show := func() (int, map[string]any) {
		t.Helper()
		code, out := run(time.Minute, vbin, "--state", filepath.Join(dir, "verifier"),
			"--server", "https://"+env["verifier_addr"], "agents", "show", "--json", "demo")
		var a map[string]any
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("agents show --json: exit %d: %v\n%s", code, err, out)
		}
		return code, a
	}
	if _, a := show(); a["state"] != "trusted" {
		t.Fatalf("after the quickstart the agent is %v, want trusted: %v", a["state"], a)
	}
	checkHealthyRun(t, dir, out, env)

	// A second start while it runs is refused.
	if code, out := quickstart("start", dir); code != 2 || !strings.Contains(out, "is running") {
		t.Errorf("second start: exit %d, want 2 and \"is running\":\n%s", code, out)
	}

	// The printed commands, run as printed (through bash, as a user's shell).
	printed := printedCommands(t, out, hello)
	sh := func(line string) (int, string) {
		t.Helper()
		return run(time.Minute, "bash", "-c", line)
	}

	// Tamper with a protected program.
	if code, out := sh(printed.tamper); code != 0 {
		t.Fatalf("%s: exit %d %s", printed.tamper, code, out)
	}

	// Its exec is denied (EPERM). A denied exec does not run and is not
	// measured: with nothing reading the file, the machine stays trusted
	// (two attestations after the exec).
	_, a := show()
	n, _ := a["attestations"].(float64)
	if err := fantest.Command(t, 30*time.Second, hello).Run(); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("exec of the tampered %s: %v, want EPERM", hello, err)
	}
	testenv.WaitFor(t, time.Minute, "two attestations after the denied exec", func() bool {
		_, a = show()
		m, _ := a["attestations"].(float64)
		return m >= n+2 || a["state"] != "trusted"
	})
	if _, a := show(); a["state"] != "trusted" {
		t.Fatalf("after a denied exec alone the agent is %v, want trusted: %v", a["state"], a)
	}

	// Run as printed, from bash: denied (exit 126, EPERM); bash then reads
	// the file to explain the error, that read is measured, and the
	// verifier turns the agent failed naming the file.
	code, out = sh(printed.run)
	if code != 126 || !strings.Contains(out, "Operation not permitted") || strings.Contains(out, "tampered") {
		t.Fatalf("%s: exit %d %q, want 126 and EPERM", printed.run, code, out)
	}
	t.Logf("%s: exit %d: %s", printed.run, code, strings.TrimSpace(out))
	ranAt := time.Now()
	var denied map[string]any
	testenv.Until(10*time.Second, func() bool { // records follow the answer
		denied = logRecord(t, filepath.Join(dir, "intactd.log"), "denied", hello)
		return denied != nil
	})
	if denied == nil || denied["verdict"] != "content-changed" || denied["decision"] != "deny" {
		t.Fatalf("intactd's denial record for %s: %v", hello, denied)
	}
	if code, out := sh(printed.grep); code != 0 || !strings.Contains(out, `"verdict":"content-changed"`) {
		t.Errorf("%s: exit %d %s, want the denial", printed.grep, code, out)
	}
	testenv.Until(20*time.Second, func() bool {
		code, a = show()
		return a["state"] == "failed"
	})
	reasons, _ := json.Marshal(a["reasons"])
	if a["state"] != "failed" || code != 1 || !strings.Contains(string(reasons), "policy: "+hello+": digest-mismatch") {
		t.Fatalf("after the tampered run: agent %v (exit %d), reasons %s; want failed naming %s", a["state"], code, reasons, hello)
	}
	t.Logf("failed %s after the run: %s", time.Since(ranAt).Round(time.Millisecond), reasons)
	code, out = sh(printed.show)
	if code != 1 || !strings.Contains(out, "state:        failed") || !strings.Contains(out, "reason:       policy: "+hello+": digest-mismatch") {
		t.Errorf("%s: exit %d\n%s\nwant exit 1, failed, naming %s", printed.show, code, out, hello)
	}

	// intact status, as printed (plus --json), answers from intactd's socket.
	code, out = sh(printed.status + " --json")
	var st struct {
		Stats map[string]any `json:"stats"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Stats["denials"] != float64(2) {
		t.Errorf("intact status: exit %d, %s; want two denials", code, out)
	}

	// Stop: nothing mounted, nothing running; twice is fine.
	for i := range 2 {
		code, out = quickstart("stop", dir)
		t.Logf("stop %d: exit %d\n%s", i+1, code, out)
		if code != 0 {
			t.Fatalf("quickstart stop: exit %d", code)
		}
	}
	stopped = true
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), " "+mnt+" ") {
		t.Errorf("%s is still mounted", mnt)
	}
	if _, out := run(30*time.Second, "losetup", "-j", filepath.Join(dir, "protected.img")); strings.TrimSpace(out) != "" {
		t.Errorf("a loop device is left on the image: %s", out)
	}
	if left := processesUnder(filepath.Join(dir, "bin")); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
	}
	code, out = quickstart("clean", dir)
	if _, err := os.Stat(dir); code != 0 || err == nil {
		t.Errorf("quickstart clean: exit %d, %s still there: %s", code, dir, out)
	}
	t.Logf("quickstart up in %s; whole test %s", up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// printed holds the commands the quickstart's text tells a user to run.
type printed struct {
	tamper, run, grep, show, status string
}

// printedCommands finds them in the quickstart's output: the tamper line,
// the line after it (run the program), the grep of the log, and the first
// "agents show demo" and "intact status" lines.
func printedCommands(t *testing.T, out, hello string) printed {
	t.Helper()
	var p printed
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case p.tamper == "" && strings.HasPrefix(l, "echo 'echo tampered' >> "+hello):
			p.tamper = l
			if i+1 < len(lines) {
				p.run = strings.TrimSpace(lines[i+1])
			}
		case p.grep == "" && strings.HasPrefix(l, "grep '\"denied\"' "):
			p.grep = l
		case p.show == "" && strings.HasSuffix(l, " agents show demo") && !strings.HasPrefix(l, "#"):
			p.show = l
		case p.status == "" && strings.Contains(l, "/intact status --socket "):
			p.status = l
		}
	}
	if p.tamper == "" || p.run != hello || p.grep == "" || p.show == "" || p.status == "" {
		t.Fatalf("the quickstart's output lacks the commands to try: %+v", p)
	}
	return p
}

// checkHealthyRun: the quickstart turned metrics on and printed the curl
// line for them, the PATH and the verifier client's alias (which work as
// printed), and the daemons' logs of a healthy run hold no warning but the
// simulator's NOT FOR PRODUCTION (no boot log on a simulator is not one).
func checkHealthyRun(t *testing.T, dir, out string, env map[string]string) {
	t.Helper()
	url := env["metrics_url"]
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("metrics_url %q", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "intactd_events_total") {
		t.Errorf("GET %s: %d\n%s", url, resp.StatusCode, body)
	}
	var path, alias string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "export PATH="):
			path = l
		case strings.HasPrefix(l, "alias iv="):
			alias, _, _ = strings.Cut(l, "     #")
		}
	}
	if !strings.Contains(out, "curl -s "+url+" ") {
		t.Errorf("the quickstart does not print the curl line for %s", url)
	}
	if path != "export PATH="+filepath.Join(dir, "bin")+":$PATH" || alias == "" {
		t.Fatalf("the quickstart does not print the PATH and the alias: %q %q", path, alias)
	}
	// As a user would paste them into an interactive shell.
	script := "shopt -s expand_aliases\n" + path + "\n" + alias + "\nintact --help >/dev/null 2>&1 || exit 9\niv agents list\n"
	cmd := fantest.Command(t, time.Minute, "bash", "-c", script)
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "demo") {
		t.Errorf("the printed PATH and alias: %v\n%s", err, b)
	}
	for _, f := range []string{"intactd.log", "verifier.log"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			warn := strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, "level=WARN") ||
				strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, "level=ERROR")
			if warn && !strings.Contains(l, "NOT FOR PRODUCTION: --tpm sim") {
				t.Errorf("%s: a healthy run logs: %s", f, l)
			}
		}
	}
}

// readEnv reads the KEY=VALUE lines of the quickstart's env file.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"verifier_addr", "agent_addr", "intactd_pid", "verifier_pid"} {
		if env[k] == "" {
			t.Fatalf("%s has no %s:\n%s", path, k, b)
		}
	}
	return env
}

// logRecord returns intactd's JSON log record with msg and path.
func logRecord(t *testing.T, log, msg, path string) map[string]any {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) == nil && r["msg"] == msg && r["path"] == path {
			return r
		}
	}
	return nil
}

// processesUnder lists live processes whose executable is in dir.
func processesUnder(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var left []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasPrefix(exe, dir+"/") {
			continue
		}
		status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if strings.Contains(string(status), "\nState:\tZ") {
			continue // a zombie: the test (pid 1 here) has not reaped it
		}
		left = append(left, e.Name()+" "+exe)
	}
	return left
}

// TestQuickstartFailure: when a step fails (here intactd cannot listen for
// its agent: the address is taken), the quickstart stops what it started,
// unmounts, names the failure and the log, and exits 2.
func TestQuickstartFailure(t *testing.T) {
	for _, tool := range []string{"bash", "go", "mkfs.ext4", "losetup", "mountpoint", "setsid"} {
		testenv.RequireTool(t, tool)
	}
	if !fantest.Isolated(t, 4*time.Minute) {
		return
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "demo")
	cmd := fantest.Command(t, 3*time.Minute, "./quickstart.sh", dir, "--verifier-listen", "127.0.0.1:0", "--agent-listen", taken.Addr().String())
	out, err := cmd.CombinedOutput()
	t.Logf("quickstart: %v\n%s", err, out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("quickstart with the agent's address taken: %v, want exit 2", err)
	}
	for _, want := range []string{"intactd did not start; see " + dir + "/intactd.log", "address already in use",
		"stopped intact-verifier", "unmounted " + dir + "/protected"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), " "+dir+"/protected ") {
		t.Errorf("%s/protected is still mounted", dir)
	}
	if left := processesUnder(filepath.Join(dir, "bin")); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
	}
}

// TestQuickstartRefusesForeignDir: a DIR (or a parent of it) another user
// owns or can write, or a DIR reached through a symlink, is refused by
// every command before anything runs: "status" on a DIR a user prepared
// (with the quickstart's marker and their own DIR/bin/intact-verifier)
// runs nothing of theirs, "start" neither builds nor removes anything.
// Isolated, so that a regression (the old script went on) cannot mount or
// start anything outside the test.
func TestQuickstartRefusesForeignDir(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "bash")
	if !fantest.Isolated(t, 4*time.Minute) {
		return
	}
	script, err := filepath.Abs("quickstart.sh")
	if err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	base := t.TempDir()
	proof := filepath.Join(base, "ran")
	mk := func(p string, mode os.FileMode, uid int) string {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A DIR a user made to look like an earlier quickstart.
	planted := mk(filepath.Join(base, "planted"), 0o755, nobody)
	mk(filepath.Join(planted, "bin"), 0o755, nobody)
	for _, f := range []string{".intact-quickstart", "quickstart.env"} {
		os.WriteFile(filepath.Join(planted, f), []byte("verifier_addr=127.0.0.1:1\n"), 0o644)
	}
	prog := "#!/bin/sh\ntouch " + proof + "\n"
	for _, name := range []string{"intact-verifier", "intact"} {
		if err := os.WriteFile(filepath.Join(planted, "bin", name), []byte(prog), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	empty := mk(filepath.Join(base, "empty"), 0o700, nobody)
	groupW := mk(filepath.Join(base, "groupw"), 0o770, 0)
	userParent := mk(filepath.Join(base, "userparent"), 0o755, nobody)
	os.Symlink(mk(filepath.Join(base, "real"), 0o755, 0), filepath.Join(base, "link"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status", planted}, planted + " is owned by uid 65534, not root"},
		{[]string{"stop", planted}, planted + " is owned by uid 65534, not root"},
		{[]string{"clean", planted}, planted + " is owned by uid 65534, not root"},
		{[]string{"start", planted}, planted + " is owned by uid 65534, not root"},
		{[]string{"start", empty}, empty + " is owned by uid 65534, not root"},
		{[]string{"start", groupW}, groupW + " is writable by group or others"},
		{[]string{"start", filepath.Join(userParent, "demo")}, userParent + " is owned by uid 65534, not root"},
		{[]string{"start", filepath.Join(base, "link", "demo")}, filepath.Join(base, "link") + " is a symbolic link"},
	} {
		cmd := fantest.Command(t, 3*time.Minute, script, c.args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("quickstart %v: %v\n%s\nwant exit 2 and %q", c.args, err, out, c.want)
		}
		if _, err := os.Stat(proof); err == nil {
			t.Fatalf("quickstart %v ran the user's program", c.args)
		}
	}
	for _, p := range []string{filepath.Join(planted, "bin", "intact-verifier"), filepath.Join(empty), filepath.Join(userParent)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if ents, _ := os.ReadDir(empty); len(ents) > 0 {
		t.Errorf("the quickstart wrote into %s", empty)
	}
}
