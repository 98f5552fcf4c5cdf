// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/policy"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

func TestParseFlagsAndConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "intactd.json")
	os.WriteFile(cfgPath, []byte(`{"watch":["/usr"],"policy":"tcb","mode":"log","deadline":"250ms","state_dir":"/var/lib/x","certs":["/etc/a.der"]}`), 0o600)
	c, err := parseFlags([]string{"--config", cfgPath, "--mode", "enforce", "--cert", "/etc/b.der", "--pcr", "12"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.OpenWriters != "fail" {
		t.Errorf("open_writers default %q, want fail", c.OpenWriters)
	}
	if c.Mode != "enforce" || c.Deadline.Duration != 250*time.Millisecond || c.PCR != 12 ||
		len(c.Certs) != 1 || c.Certs[0] != "/etc/b.der" || c.Socket != "/var/lib/x/intactd.sock" || c.Policy != "tcb" {
		t.Errorf("config = %+v", c)
	}
	bad := []struct {
		args []string
		file string
		want string
	}{
		{[]string{"--policy", "tcb"}, "", "no mount to watch"},
		{[]string{"--watch", "usr", "--policy", "tcb"}, "", "not an absolute path"},
		{[]string{"--watch", "/usr"}, "", "no policy"},
		{[]string{"--watch", "/usr", "--policy", "tcb", "--mode", "strict"}, "", "want enforce or log"},
		{[]string{"--watch", "/var", "--policy", "tcb"}, "", "keep intactd's own files off watched mounts"},
		{[]string{"--watch", "/usr", "--policy", "tcb", "--fail-verdict", "maybe"}, "", "fail_verdict"},
		{[]string{"--watch", "/usr", "--policy", "tcb", "extra"}, "", "unexpected argument"},
		{[]string{"--watch", "/usr", "--policy", "tcb", "--evm-optional"}, "", "evm_optional needs evm_key or evm_certs"},
		{[]string{"--watch", "/usr", "--policy", "tcb", "--open-writers", "allow"}, "", "open_writers"},
		{nil, `{"watch":["/usr"],"policy":"tcb","open_writers":"ignore"}`, "want fail or appraise"},
		{nil, `{"watch":["/usr"],"policy":"tcb","bogus":1}`, "unknown field"},
		{nil, `{"watch":["/usr"],"policy":"tcb"} {}`, "trailing data"},
		{nil, `{"deadline":5}`, "duration"},
	}
	for _, b := range bad {
		args := b.args
		if b.file != "" {
			p := filepath.Join(dir, "bad.json")
			os.WriteFile(p, []byte(b.file), 0o600)
			args = append([]string{"--config", p}, args...)
		}
		if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("parseFlags(%v %s) = %v, want %q", b.args, b.file, err, b.want)
		}
	}
}

func TestLoadPolicy(t *testing.T) {
	p, err := loadPolicy("tcb|appraise_tcb")
	if err != nil || len(p.Rules) == 0 {
		t.Fatalf("built-in: %v", err)
	}
	if !needsOpenEvents(p) {
		t.Error("tcb needs open events")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "p")
	os.WriteFile(f, []byte("appraise func=BPRM_CHECK\ndont_appraise fsmagic=0x9fa0\n"), 0o600)
	if p, err = loadPolicy(f); err != nil || needsOpenEvents(p) {
		t.Errorf("exec-only policy: %v, needsOpenEvents %v", err, needsOpenEvents(p))
	}
	os.WriteFile(f, []byte("appraise func=MODULE_CHECK\n"), 0o600)
	if _, err := loadPolicy(f); err == nil || !strings.Contains(err.Error(), f+":1:10") {
		t.Errorf("bad policy: %v", err)
	}
}

func TestSdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "READY=1" {
		t.Errorf("received %q, %v", b[:n], err)
	}
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := watchdogInterval(); d != 5*time.Second {
		t.Errorf("watchdogInterval = %v, want 5s", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := watchdogInterval(); d != 0 {
		t.Errorf("watchdog for another pid = %v", d)
	}
}

type nopSource struct{ stop chan struct{} }

func (s nopSource) Next() ([]enforce.Event, error) { <-s.stop; return nil, enforce.ErrInterrupted }
func (s nopSource) Interrupt()                     { close(s.stop) }
func (nopSource) Respond(int, bool) error          { return nil }
func (nopSource) Ignore(int, bool) error           { return nil }
func (nopSource) Unignore(int) error               { return nil }
func (nopSource) UnignoreAll() error               { return nil }

func TestControlAndMetrics(t *testing.T) {
	p, _ := policy.Parse("p", []byte("audit func=BPRM_CHECK\n"))
	eng, err := enforce.New(nopSource{make(chan struct{})}, enforce.Config{Policy: p, Mode: enforce.Log, Deadline: time.Second,
		Inspector: fileInspector{appraise.New(appraise.Options{})}})
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(defaults(), io.Discard)
	sock := filepath.Join(t.TempDir(), "c.sock")
	srv, err := serveControl(sock, func() enforce.Status { return enforce.Status{Pid: 7, Healthy: true, Stats: eng.Stats()} }, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi, err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://x/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st enforce.Status
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Pid != 7 || !st.Healthy || st.Stats.Mode != "log" {
		t.Errorf("status = %+v", st)
	}
	m, addr, err := serveMetrics("127.0.0.1:0", eng, log)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "intactd_decisions_total 0") || !strings.Contains(string(body), "# TYPE intactd_decision_latency_seconds histogram") {
		t.Errorf("metrics:\n%s", body)
	}
}

func TestCheckMountPoint(t *testing.T) {
	if err := checkMountPoint("/"); err != nil {
		t.Errorf("/: %v", err)
	}
	if err := checkMountPoint(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a mount point") {
		t.Errorf("temp dir: %v, want not a mount point", err)
	}
	if err := checkMountPoint("/nonexistent/x"); err == nil {
		t.Error("missing path accepted")
	}
}

func TestLoadEVMKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	kf, err := evm.SealPassphrase(key, []byte("secret"), evm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kp, pp := filepath.Join(dir, "evm.key"), filepath.Join(dir, "pass")
	os.WriteFile(kp, kf.Marshal(), 0o600)
	os.WriteFile(pp, []byte("secret\n"), 0o600)
	got, err := loadEVMKey(kp, pp)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("from file: %x %v", got, err)
	}
	t.Setenv("INTACTD_EVM_PASSPHRASE", "secret")
	if got, err := loadEVMKey(kp, ""); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("from env: %x %v", got, err)
	}
	t.Setenv("INTACTD_EVM_PASSPHRASE", "wrong")
	if _, err := loadEVMKey(kp, ""); err == nil {
		t.Error("wrong passphrase accepted")
	}
	os.WriteFile(kp, []byte("not a key file"), 0o600)
	if _, err := loadEVMKey(kp, pp); err == nil || !strings.Contains(err.Error(), kp) {
		t.Errorf("garbage key file: %v", err)
	}
}

// TestSimTPMWarnsAtEveryStart: intactd with --tpm sim logs a NOT FOR
// PRODUCTION warning at every start, before anything else can fail; with
// a real TPM spec it does not.
func TestSimTPMWarnsAtEveryStart(t *testing.T) {
	for _, c := range []struct {
		tpm  string
		warn bool
	}{{"sim", true}, {"sim", true}, {"/dev/tpmrm0", false}, {"", false}} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		cfg := Config{Watch: []string{t.TempDir()}, Policy: "tcb", Mode: "enforce", TPM: c.tpm}
		if err := serve(cfg, log); err == nil || !strings.Contains(err.Error(), "not a mount point") {
			t.Fatalf("serve: %v, want the mount point error", err)
		}
		got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "NOT FOR PRODUCTION")
		if got != c.warn {
			t.Errorf("--tpm %q: warned %v, want %v; log:\n%s", c.tpm, got, c.warn, buf.String())
		}
	}
}

// TestCheckSimulator: --tpm sim is refused, naming the build tag, when
// the build has no simulator (a release build), and only then.
func TestCheckSimulator(t *testing.T) {
	for _, c := range []struct {
		spec string
		tpms tpm.Opener
		fail bool
	}{
		{"sim", tpm.Opener{}, true},
		{"sim", sim.Opener(), false},
		{"/dev/tpmrm0", tpm.Opener{}, false},
		{"", tpm.Opener{}, false},
		{"swtpm:127.0.0.1:2321", tpm.Opener{}, false},
	} {
		err := checkSimulator(Config{TPM: c.spec}, c.tpms)
		if (err != nil) != c.fail || (c.fail && err.Error() != "--tpm sim: this build has no TPM simulator (build with -tags intact_sim)") {
			t.Errorf("checkSimulator(%q, simulator %v) = %v, want failure %v", c.spec, c.tpms.Simulator != nil, err, c.fail)
		}
	}
}

// TestRunRefusesSimWithoutSimulator: intactd --tpm sim (from a flag or
// the config file) in a build without the simulator (this test binary
// unless built with -tags intact_sim) exits 2 at once with the error and
// a hint; with the simulator it gets past the check.
func TestRunRefusesSimWithoutSimulator(t *testing.T) {
	dir, watch := t.TempDir(), t.TempDir()
	conf := filepath.Join(dir, "intactd.json")
	if err := os.WriteFile(conf, []byte(`{"tpm": "sim"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--tpm", "sim", "--watch", watch, "--policy", "tcb", "--mode", "enforce", "--state-dir", dir},
		{"--config", conf, "--watch", watch, "--policy", "tcb", "--mode", "enforce", "--state-dir", dir},
	} {
		var stderr bytes.Buffer
		code := run(args, &stderr)
		refused := code == 2 && strings.HasPrefix(stderr.String(), "intactd: error: --tpm sim: this build has no TPM simulator (build with -tags intact_sim)\nintactd: hint: ")
		if release := tpmOpener().Simulator == nil; refused != release {
			t.Errorf("intactd %v (release build %v): exit %d, refused %v; stderr:\n%s", args, release, code, refused, stderr.String())
		}
	}
}
