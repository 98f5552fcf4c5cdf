// SPDX-License-Identifier: Apache-2.0

// Package tpmtest runs software TPMs for tests: a swtpm process on free
// loopback ports, and helpers to run tpm2-tools against it.
//
// swtpm serves one TCP client at a time: close every connection a test
// opened (tpm.TPM.Close) before running a tpm2-tools command against the
// same swtpm, or the tool waits.
package tpmtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/attest/ekcert"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/tpm"
)

// Lifetime bounds how long a swtpm may run; it is killed at the test's
// cleanup or after Lifetime, whichever is first.
const Lifetime = 10 * time.Minute

// toolTimeout bounds one tpm2-tools run.
const toolTimeout = 2 * time.Minute

// Swtpm is a running swtpm.
type Swtpm struct {
	Port     int    // TPM command port on 127.0.0.1
	CtrlPort int    // control channel, Port+1
	StateDir string // --tpmstate dir
	Log      string // swtpm's log file
	// EKCA is a directory holding the certificates (root and issuer) of
	// the local CA that signed the EK certificates (Options.EKCert).
	EKCA string
}

// Options change how [Start] runs swtpm.
type Options struct {
	// NeedInit starts swtpm without "--flags not-need-init,startup-clear":
	// the client must send CMD_INIT on the control channel and
	// TPM2_Startup itself.
	NeedInit bool
	// StateDir reuses a state directory (a restart, with persisted NV
	// and seeds); empty means a fresh one.
	StateDir string
	// EKCert manufactures a fresh state with swtpm_setup --create-ek-cert
	// and a local CA of the test's own (swtpm_localca): RSA and ECC EKs
	// with certificates in NV, signed by an intermediate of that CA.
	// Swtpm.EKCA is then a directory with the CA's two certificates.
	EKCert bool
}

// Start starts swtpm on free loopback ports and registers its kill with
// t.Cleanup. The test fails if swtpm is not installed in CI (skips on a
// developer machine without it).
func Start(t testing.TB, opts Options) *Swtpm {
	t.Helper()
	bin := testenv.RequireTool(t, "swtpm")
	dir := opts.StateDir
	if dir == "" {
		dir = t.TempDir()
	}
	var ekCA string
	if opts.EKCert {
		ekCA = manufacture(t, dir)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := start(t, bin, dir, opts)
		if err == nil {
			s.EKCA = ekCA
			return s
		}
		lastErr = err // most likely a port taken meanwhile: try others
	}
	t.Fatalf("starting swtpm: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, dir string, opts Options) (*Swtpm, error) {
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	s := &Swtpm{Port: port, CtrlPort: port + 1, StateDir: dir,
		Log: filepath.Join(t.TempDir(), "swtpm.log")}
	args := []string{"socket", "--tpm2",
		"--server", "type=tcp,bindaddr=127.0.0.1,port=" + strconv.Itoa(s.Port),
		"--ctrl", "type=tcp,bindaddr=127.0.0.1,port=" + strconv.Itoa(s.CtrlPort),
		"--tpmstate", "dir=" + dir,
		"--log", "file=" + s.Log + ",level=1",
	}
	if !opts.NeedInit {
		args = append(args, "--flags", "not-need-init,startup-clear")
	}
	ctx, cancel := context.WithTimeout(context.Background(), Lifetime)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() { cancel(); <-exited }
	if err := waitListening(cmd.Process.Pid, s.Port, s.CtrlPort, exited); err != nil {
		stop()
		log, _ := os.ReadFile(s.Log)
		return nil, fmt.Errorf("%v (output: %q, log: %q)", err, stderr.String(), log)
	}
	t.Cleanup(stop)
	return s, nil
}

// freePortPair finds a port P with P and P+1 free on 127.0.0.1.
func freePortPair() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free pair of loopback ports")
}

// waitListening waits until process pid itself listens on both ports. A
// successful connect is not enough: with many test processes picking
// free ports at once, another test's swtpm may have bound the port
// between freePortPair and our swtpm's bind, and ours then exits.
func waitListening(pid, port, ctrlPort int, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("swtpm exited (port %d or %d taken?)", port, ctrlPort)
		default:
		}
		ok, err := listensOn(pid, port, ctrlPort)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("swtpm not listening on 127.0.0.1:%d and :%d after 10s", port, ctrlPort)
}

// listensOn reports whether process pid holds listening TCP sockets on
// 127.0.0.1 on all the ports: it matches the socket inodes of the
// process's open files with /proc/net/tcp.
func listensOn(pid int, ports ...int) (bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, nil // exited meanwhile: the caller sees it
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	tab, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, err
	}
	found := map[int]bool{}
	for _, line := range strings.Split(string(tab), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
			continue
		}
		if _, hexPort, ok := strings.Cut(f[1], ":"); ok {
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				found[int(p)] = true
			}
		}
	}
	for _, p := range ports {
		if !found[p] {
			return false, nil
		}
	}
	return true, nil
}

// Spec is the intact TPM spec for this swtpm ("swtpm:127.0.0.1:PORT").
func (s *Swtpm) Spec() string { return "swtpm:127.0.0.1:" + strconv.Itoa(s.Port) }

// TCTI is the tpm2-tools TCTI string for this swtpm.
func (s *Swtpm) TCTI() string { return "swtpm:host=127.0.0.1,port=" + strconv.Itoa(s.Port) }

// Tool runs a tpm2-tools program against the swtpm and returns its
// standard output; the test fails if it fails. It needs the tool
// installed (fails in CI otherwise).
func (s *Swtpm) Tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := s.TryTool(t, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

// TryTool is Tool for runs that may fail: it returns the error (with
// stderr) instead of failing the test.
func (s *Swtpm) TryTool(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	bin := testenv.RequireTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TPM2TOOLS_TCTI="+s.TCTI())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

// EKHash is the ekcert.KeyHash of the endorsement key an agent on this
// swtpm reports (for EK allowlists in tests). The test fails if it
// cannot be read.
func (s *Swtpm) EKHash(t testing.TB) string {
	t.Helper()
	tp, err := tpm.Open(s.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	return EKHashOf(t, tp)
}

// EKHashOf is EKHash for an open TPM.
func EKHashOf(t testing.TB, tp *tpm.TPM) string {
	t.Helper()
	ek, err := tp.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ekcert.KeyHash(k)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// manufacture runs swtpm_setup on dir with a local CA in a directory of
// the test's own, and returns a directory with the CA's certificates.
func manufacture(t testing.TB, dir string) string {
	t.Helper()
	setup := testenv.RequireTool(t, "swtpm_setup")
	localca := testenv.RequireTool(t, "swtpm_localca")
	testenv.RequireTool(t, "certtool") // swtpm_localca makes its CA with it
	work := t.TempDir()
	caState := filepath.Join(work, "ca")
	if err := os.Mkdir(caState, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"localca.conf": "statedir = " + caState + "\nsigningkey = " + caState + "/signkey.pem\nissuercert = " + caState +
			"/issuercert.pem\ncertserial = " + caState + "/certserial\n",
		"localca.options": "--platform-manufacturer intact-test\n--platform-version 2.1\n--platform-model swtpm\n",
		"swtpm_setup.conf": "create_certs_tool = " + localca + "\ncreate_certs_tool_config = " + filepath.Join(work, "localca.conf") +
			"\ncreate_certs_tool_options = " + filepath.Join(work, "localca.options") + "\nactive_pcr_banks = sha256,sha1\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, setup, "--tpm2", "--tpmstate", dir, "--create-ek-cert", "--overwrite",
		"--config", filepath.Join(work, "swtpm_setup.conf"), "--logfile", filepath.Join(work, "setup.log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "setup.log"))
		t.Fatalf("swtpm_setup --create-ek-cert: %v: %s %s", err, out, log)
	}
	certs := filepath.Join(work, "ek-ca")
	if err := os.Mkdir(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"issuercert.pem", "swtpm-localca-rootca-cert.pem"} {
		b, err := os.ReadFile(filepath.Join(caState, f))
		if err != nil {
			t.Fatalf("swtpm_localca made no %s: %v", f, err)
		}
		if err := os.WriteFile(filepath.Join(certs, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return certs
}
