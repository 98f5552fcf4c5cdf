// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/bench/fleet/sim"
	"github.com/intactsec/intact/store/sqlite"
)

// target is a verifier under test: its operator API, and how much CPU it
// has used.
type target struct {
	url    string
	token  string
	client *http.Client
	state  string // state directory (verifier.db lives there)
	// cpu returns the verifier's CPU time so far; ok false when it cannot
	// be told apart from the load generator's (in-process).
	cpu  func() (time.Duration, bool)
	stop func() error
	kill func() // SIGKILL (a child process only)
	// dbSize and dbCPU, when set, measure a database server (PostgreSQL)
	// instead of the SQLite file in state.
	dbSize func() int64
	dbCPU  func() (time.Duration, bool)
}

// dbCPUNow is the database server's CPU time so far (ok false: not known,
// such as SQLite in the verifier's process or a server this run did not
// start).
func (t *target) dbCPUNow() (time.Duration, bool) {
	if t.dbCPU == nil {
		return 0, false
	}
	return t.dbCPU()
}

// apiClient is an operator API client pinned to the verifier's
// certificate, with enough idle connections for parallel enrollment.
func apiClient(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("verifier certificate: no PEM certificate")
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13},
		MaxIdleConnsPerHost: 64,
	}}, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBinary runs `intact-verifier serve` as a child process with a
// fresh state directory.
func startBinary(bin, state string, interval time.Duration, stderr io.Writer, extra ...string) (*target, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(ekAllowPath(state)); err != nil { // a restart keeps the list
		if err := os.WriteFile(ekAllowPath(state), []byte("# the simulated agents' EKs\n"), 0o644); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, append([]string{"serve", "--state", state, "--listen", addr, "--interval", interval.String(),
		"--ek-allow", ekAllowPath(state)}, extra...)...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() { cmd.Process.Kill(); <-exited }
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			return <-exited
		}
	}
	// The token and certificate are written (atomically) before the
	// verifier listens; then the API answers.
	var tok, ca []byte
	var cl *http.Client
	deadline := time.Now().Add(30 * time.Second)
	for {
		if cl == nil {
			tok, _ = os.ReadFile(filepath.Join(state, "api-token"))
			ca, _ = os.ReadFile(filepath.Join(state, "verifier.crt"))
			if len(tok) > 0 && len(ca) > 0 {
				if cl, err = apiClient(ca); err != nil {
					stop()
					return nil, err
				}
			}
		}
		if cl != nil {
			t := &target{url: "https://" + addr, token: strings.TrimSpace(string(tok)), client: cl}
			if t.call(context.Background(), "GET", "/v1/policies", nil, 200, nil) == nil {
				break
			}
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("intact-verifier exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("intact-verifier does not answer on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	return &target{url: "https://" + addr, token: strings.TrimSpace(string(tok)), client: cl, state: state,
		cpu: func() (time.Duration, bool) {
			d, err := procCPU(pid)
			return d, err == nil
		}, stop: stop, kill: kill}, nil
}

// procCPU is the user+system CPU time of a process, all its threads
// (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) { return statCPU(pid, false) }

// procCPUWithChildren adds the CPU time of the children the process has
// waited for (fields 16 and 17).
func procCPUWithChildren(pid int) (time.Duration, error) { return statCPU(pid, true) }

func statCPU(pid int, children bool) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold spaces
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 { // fields from 3 (state) on
		return 0, errors.New("stat: too few fields")
	}
	idx := []int{11, 12}
	if children {
		idx = append(idx, 13, 14)
	}
	var ticks int64
	for _, j := range idx {
		n, err := strconv.ParseInt(f[j], 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startInProcess runs the verifier (SQLite store, operator API over TLS)
// in this process: for tests and CPU profiles. Its CPU cannot be told
// apart from the generator's.
func startInProcess(state string, interval time.Duration, log *slog.Logger) (*target, error) {
	st, err := sqlite.Open(filepath.Join(state, "verifier.db"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(ekAllowPath(state), []byte("# the simulated agents' EKs\n"), 0o644); err != nil {
		st.Close()
		return nil, err
	}
	v, err := verifier.New(verifier.Options{Store: st, Logger: log, Interval: interval,
		EKTrust: verifier.EKTrustFiles(nil, []string{ekAllowPath(state)})})
	if err != nil {
		st.Close()
		return nil, err
	}
	const token = "fleet-bench-token-0123456789"
	h, err := verifier.NewAPI(v, token)
	if err != nil {
		st.Close()
		return nil, err
	}
	certPEM, keyPEM, err := attest.NewSelfSigned("intact-verifier")
	if err != nil {
		st.Close()
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		return nil, err
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}
	go srv.ServeTLS(ln, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	cl, err := apiClient(certPEM)
	if err != nil {
		cancel()
		st.Close()
		return nil, err
	}
	return &target{url: "https://" + ln.Addr().String(), token: token, client: cl, state: state,
		cpu: func() (time.Duration, bool) { return 0, false },
		stop: func() error {
			srv.Close()
			cancel()
			err := <-done
			return errors.Join(err, st.Close())
		}}, nil
}

// call makes an operator API request; out (if not nil) receives the JSON
// answer.
func (t *target) call(ctx context.Context, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, t.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &statusError{code: resp.StatusCode, msg: fmt.Sprintf("%s %s: %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// dbBytes is the size of the verifier's database with its WAL.
func (t *target) dbBytes() int64 {
	if t.dbSize != nil {
		return t.dbSize()
	}
	var n int64
	for _, f := range []string{"verifier.db", "verifier.db-wal"} {
		if fi, err := os.Stat(filepath.Join(t.state, f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// statusError is an operator API answer other than the one expected.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// ekAllowPath is the verifier's EK allowlist: the simulated agents'
// software EKs have no maker's certificate, so each is allowed by name
// before it is enrolled.
func ekAllowPath(state string) string { return filepath.Join(state, "ek-allow") }

// allowEKs adds the agents' EKs to the allowlist.
func allowEKs(state string, agents []*sim.Agent) error {
	var b strings.Builder
	for _, a := range agents {
		h, err := a.EKHash()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s\n", h, a.ID)
	}
	f, err := os.OpenFile(ekAllowPath(state), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
