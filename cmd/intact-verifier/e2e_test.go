// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/sig"
)

const e2eInterval = 500 * time.Millisecond

// buildBinaries builds intact-verifier and intact-agent into dir.
func buildBinaries(t *testing.T, dir string) (verifierBin, agentBin string) {
	t.Helper()
	testenv.RequireTool(t, "go")
	verifierBin, agentBin = filepath.Join(dir, "intact-verifier"), filepath.Join(dir, "intact-agent")
	for bin, pkg := range map[string]string{verifierBin: ".", agentBin: "../intact-agent"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is a running binary.
type daemon struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed when it has exited and been waited for
}

// runBinary runs bin with args to its end and returns its standard
// output; the test fails unless it exits with wantCode.
func runBinary(t *testing.T, wantCode int, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != wantCode {
		t.Fatalf("%s %v: exit %d (want %d): %s%s", filepath.Base(bin), args, code, wantCode, out.String(), errb.String())
	}
	return out.String()
}

func start(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	d := &daemon{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := d.exited
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), d.out)
		}
	})
	return d
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
}

// waitFor polls cond every 20ms for at most d, and at least a minute:
// what every caller awaits is that the condition comes true (an agent
// trusted, failed, an address logged), never how fast, and on a loaded
// 2-core machine attestation rounds with swtpm can take many seconds
// (TestEndToEndEndlessList's 15 s wait ran out once). A condition that
// never comes true still fails the test, a minute later.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if d < time.Minute {
		d = time.Minute
	}
	testenv.WaitFor(t, d, what, cond)
}

var addrRE = regexp.MustCompile(`intact-verifier serving" addr=(\S+)`)

func TestEndToEnd(t *testing.T) {
	testenv.RequireTool(t, "tpm2_checkquote")
	dir := t.TempDir()
	vbin, abin := buildBinaries(t, dir)
	// A TPM with an EK certificate from a CA of its own (swtpm_localca):
	// the verifier trusts the makers' CAs and that one.
	sw := tpmtest.Start(t, tpmtest.Options{EKCert: true})
	agentState, vstate := filepath.Join(dir, "agent"), filepath.Join(dir, "verifier")
	list := filepath.Join(dir, "measurements")
	files := filepath.Join(dir, "files")
	os.Mkdir(files, 0o755)
	ok1, ok2, evil := filepath.Join(files, "ok1"), filepath.Join(files, "ok2"), filepath.Join(files, "evil")
	for _, f := range []string{ok1, ok2, evil} {
		os.WriteFile(f, []byte("content of "+f), 0o755)
	}
	measure := func(paths ...string) {
		runBinary(t, 0, abin, append([]string{"measure", "--tpm", sw.Spec(), "--list", list}, paths...)...)
	}

	// The agent boots: its list starts with a boot_aggregate; ok1 runs.
	measure(ok1)
	ag := start(t, abin, "serve", "--tpm", sw.Spec(), "--state", agentState, "--list", list, "--listen", "127.0.0.1:0")
	var agentAddr string
	waitFor(t, 20*time.Second, "the agent's address", func() bool {
		b, err := os.ReadFile(filepath.Join(agentState, "addr"))
		agentAddr = strings.TrimSpace(string(b))
		return err == nil && agentAddr != ""
	})

	// A webhook receiver, down (503) until the end of the run.
	hook := &e2eHook{down: true}
	hsrv := httptest.NewServer(hook)
	defer hsrv.Close()
	secretFile := filepath.Join(dir, "webhook-secret")
	os.WriteFile(secretFile, []byte("e2e-webhook-secret-0123\n"), 0o600)

	startVerifier := func() (*daemon, []string) {
		v := start(t, vbin, "serve", "--state", vstate, "--listen", "127.0.0.1:0", "--interval", e2eInterval.String(),
			"--ek-ca", "../../dist/ek-ca", "--ek-ca", sw.EKCA,
			"--webhook", hsrv.URL+"/hook", "--webhook-allow-http", "--webhook-secret", secretFile, "--webhook-max-backoff", "1s")
		var m []string
		waitFor(t, 20*time.Second, "the verifier's address", func() bool {
			m = addrRE.FindStringSubmatch(v.out.String())
			return m != nil
		})
		return v, []string{"--state", vstate, "--server", "https://" + m[1]}
	}
	vd, client := startVerifier()
	cli := func(wantCode int, args ...string) string {
		return runBinary(t, wantCode, vbin, append(client, args...)...)
	}
	show := func(id string) *verifier.AgentView {
		cmd := exec.Command(vbin, append(client, "agents", "show", "--json", id)...)
		out, _ := cmd.Output()
		var v verifier.AgentView
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("agents show: %v: %q", err, out)
		}
		return &v
	}

	// No token, no access.
	if out, err := exec.Command(vbin, "--server", client[3], "--token-file", "/dev/null", "--ca", filepath.Join(vstate, "verifier.crt"), "agents", "list").CombinedOutput(); err == nil {
		t.Fatalf("agents list without a token succeeded: %s", out)
	}

	policy := fmt.Sprintf(`{"intact_runtime_policy":1,"name":"e2e","digests":{%q:[%q],%q:[%q]}}`, ok1, fileSum(t, ok1), ok2, fileSum(t, ok2))
	pfile := filepath.Join(dir, "policy.json")
	os.WriteFile(pfile, []byte(policy), 0o644)
	cli(0, "policy", "add", "e2e", pfile)
	if !strings.Contains(cli(0, "policy", "show", "e2e"), ok2) {
		t.Fatal("policy show does not show the policy")
	}

	// Enrolled and trusted within two intervals.
	enrolled := time.Now()
	// The agent's EK as "intact-verifier ek" sees it: refused by the
	// makers' CAs alone (exit 1), chained with the local CA.
	ekOut := runBinary(t, 1, vbin, "ek", agentAddr, "--cert", filepath.Join(agentState, "tls.crt"), "--ek-ca", "../../dist/ek-ca")
	if !strings.Contains(ekOut, "refused: ek certificate does not chain") || !strings.Contains(ekOut, `issuer "CN=swtpm-localca"`) {
		t.Fatalf("intact-verifier ek without the local CA:\n%s", ekOut)
	}
	if ekOut := runBinary(t, 0, vbin, "ek", agentAddr, "--cert", filepath.Join(agentState, "tls.crt"), "--ek-ca", sw.EKCA); !strings.Contains(ekOut, "chains to") {
		t.Fatalf("intact-verifier ek with the local CA:\n%s", ekOut)
	}
	cli(0, "agents", "add", "host1", agentAddr, "--policy", "e2e", "--cert", filepath.Join(agentState, "tls.crt"))
	waitFor(t, 2*e2eInterval+5*time.Second, "trusted", func() bool { return show("host1").State == "trusted" })
	v := show("host1")
	t.Logf("trusted %v after enrollment (%d attestations, interval %v)", time.Since(enrolled), v.Attestations, e2eInterval)
	if v.Attestations > 2 {
		t.Errorf("trusted after %d attestations, want at most 2", v.Attestations)
	}
	if !strings.Contains(cli(0, "agents", "list"), "trusted") {
		t.Error("agents list does not show the agent trusted")
	}

	// tpm2_checkquote verifies a quote the agent made, with the AK public
	// key the verifier stored.
	checkQuoteInterop(t, dir, v, agentAddr, filepath.Join(agentState, "tls.crt"))

	// The verifier restarts mid-run and resumes from its stored offset.
	stored := show("host1").LogOffset
	vd.stop(t)
	measure(ok2)
	before := len(quoteOffsets(ag.out.String()))
	_, client = startVerifier() // stopped by the test's cleanup
	waitFor(t, 10*time.Second, "trusted at 4 records after the restart", func() bool {
		v := show("host1")
		return v.State == "trusted" && v.LogOffset == 4
	})
	offsets := quoteOffsets(ag.out.String())[before:]
	if stored != 3 || len(offsets) == 0 || offsets[0] != "3" {
		t.Fatalf("stored offset %d; after restart the verifier asked for the list from %v, want from 3", stored, offsets)
	}
	for _, o := range offsets {
		if o == "0" || o == "1" || o == "2" {
			t.Fatalf("after restart the whole list was asked for again: %v", offsets)
		}
	}

	// A file outside the policy runs: failed, naming it, within two intervals.
	n := show("host1").Attestations
	ran := time.Now()
	measure(evil)
	waitFor(t, 2*e2eInterval+5*time.Second, "failed", func() bool { return show("host1").State == "failed" })
	v = show("host1")
	t.Logf("failed %v after the file ran (%d attestations): %v", time.Since(ran), v.Attestations-n, v.Reasons)
	if v.Attestations-n > 2 {
		t.Errorf("failed %d attestations after the file ran, want at most 2", v.Attestations-n)
	}
	if r := strings.Join(v.Reasons, "; "); !strings.Contains(r, evil) || !strings.Contains(r, "not-in-policy") {
		t.Errorf("reasons %q do not name %s", r, evil)
	}
	out := cli(1, "agents", "show", "host1")
	if !strings.Contains(out, evil) {
		t.Errorf("agents show: %s", out)
	}
	// The timeline: enrolled, trusted, failed with the reason.
	if m := regexp.MustCompile(`(?s)timeline:\n.*  enrolled\n.*  enrolled -> trusted\n.*  trusted -> failed \(security\)\n\s+policy: ` + regexp.QuoteMeta(evil)).FindString(out); m == "" {
		t.Errorf("agents show has no timeline enrolled, trusted, failed:\n%s", out)
	}
	if tl := show("host1").Timeline; len(tl) != 3 || tl[2].Type != verifier.EventFailed {
		t.Errorf("agents show --json timeline = %+v", tl)
	}
	// The signed result verifies with the key in the state directory.
	tok := strings.TrimSpace(cli(0, "agents", "ear", "host1"))
	k, err := sig.LoadPrivateKey(filepath.Join(vstate, "ear.key"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ear.Verify(tok, &k.(*ecdsa.PrivateKey).PublicKey)
	if err != nil || res.Submods["host1"].Status != ear.StatusContraindicated || !slices.Contains(res.Submods["host1"].Paths, evil) {
		t.Errorf("agents ear: %+v, %v", res, err)
	}
	// agents list exits 1 as its help says, with the failed agent listed.
	if out := cli(1, "agents", "list"); !strings.Contains(out, "failed") {
		t.Errorf("agents list with a failed agent: %s", out)
	}
	if out := cli(0, "policy", "list"); strings.TrimSpace(out) != "e2e" {
		t.Errorf("policy list = %q, want e2e", out)
	}
	// --decode verifies the EAR with the verifier's key and prints it.
	var decoded ear.Result
	if err := json.Unmarshal([]byte(cli(0, "agents", "ear", "--decode", "host1")), &decoded); err != nil ||
		decoded.Submods["host1"].Status != ear.StatusContraindicated {
		t.Errorf("agents ear --decode: %+v, %v", decoded, err)
	}
	// The client settings from the environment, then from a file, instead
	// of flags.
	envRun := func(wantCode int, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(vbin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != wantCode {
			t.Fatalf("%v %v: exit %d (want %d), %v: %s", env, args, code, wantCode, err, out)
		}
		return string(out)
	}
	envRun(1, []string{"INTACT_VERIFIER_STATE=" + vstate, "INTACT_VERIFIER_SERVER=" + client[3]}, "agents", "list")
	cfgFile := filepath.Join(dir, "client.json")
	os.WriteFile(cfgFile, fmt.Appendf(nil, `{"server": %q, "token_file": %q, "ca": %q}`, client[3],
		filepath.Join(vstate, "api-token"), filepath.Join(vstate, "verifier.crt")), 0o600)
	envRun(1, []string{"INTACT_VERIFIER_CONFIG=" + cfgFile}, "agents", "list")
	envRun(1, nil, "--config", cfgFile, "agents", "list")
	// A flag wins over the environment: a wrong server in the environment,
	// the right one as a flag.
	envRun(1, []string{"INTACT_VERIFIER_SERVER=https://127.0.0.1:1"}, "--config", cfgFile, "--server", client[3], "agents", "list")
	envRun(2, []string{"INTACT_VERIFIER_SERVER=https://127.0.0.1:1"}, "--config", cfgFile, "agents", "list")

	// The operator decides evil was expected: reactivate. The decision is
	// in the timeline, and the agent is attested (and trusted) again.
	cli(0, "agents", "reactivate", "host1", "--note", "evil is the release candidate")
	waitFor(t, 2*e2eInterval+5*time.Second, "trusted after reactivation", func() bool { return show("host1").State == "trusted" })
	if out := cli(0, "agents", "show", "host1"); !strings.Contains(out, "failed -> enrolled: reactivated by the operator") ||
		!strings.Contains(out, "evil is the release candidate") {
		t.Errorf("agents show after reactivation has no reactivation in its timeline:\n%s", out)
	}
	cli(2, "agents", "reactivate", "host1") // not failed: refused
	cli(0, "agents", "remove", "host1")
	cli(2, "agents", "show", "host1")

	// The receiver, down all along and across the restart, comes back and
	// receives every change once, in order, signed.
	hook.mu.Lock()
	refused := hook.refused
	hook.down = false
	hook.mu.Unlock()
	if refused == 0 {
		t.Error("the receiver was never tried while down")
	}
	waitFor(t, 10*time.Second, "6 webhook deliveries", func() bool { hook.mu.Lock(); defer hook.mu.Unlock(); return len(hook.types) >= 6 })
	time.Sleep(2 * e2eInterval) // time under test: two intervals in which nothing may be delivered again
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if want := []string{"enrolled", "trusted", "failed", "reactivated", "trusted", "removed"}; !slices.Equal(hook.types, want) || len(hook.bad) > 0 {
		t.Errorf("webhook received %v (bad: %v), want %v once each", hook.types, hook.bad, want)
	}
}

// e2eHook is a webhook receiver: 503 while down, else it checks and
// records each delivery.
type e2eHook struct {
	mu      sync.Mutex
	down    bool
	refused int
	ids     map[string]bool
	types   []string
	bad     []string
}

func (h *e2eHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		h.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify([]byte("e2e-webhook-secret-0123"), r.Header.Get(webhook.HeaderEvent), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, time.Now(), time.Minute); err != nil {
		h.bad = append(h.bad, err.Error())
	}
	var n verifier.Notification
	if err := json.Unmarshal(body, &n); err != nil || n.ID != r.Header.Get(webhook.HeaderEvent) {
		h.bad = append(h.bad, fmt.Sprintf("body %s: %v", body, err))
	}
	if h.ids == nil {
		h.ids = map[string]bool{}
	}
	if h.ids[n.ID] {
		h.bad = append(h.bad, "again: "+n.ID)
	}
	h.ids[n.ID] = true
	h.types = append(h.types, n.Type)
}

func fileSum(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(sha256Sum(b))
}

var offsetRE = regexp.MustCompile(`path=/v1/quote offset=(\d+)`)

func quoteOffsets(log string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if m := offsetRE.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// checkQuoteInterop asks the agent for a quote and has tpm2_checkquote
// verify it with the AK the verifier stored.
func checkQuoteInterop(t *testing.T, dir string, v *verifier.AgentView, addr, certPath string) {
	t.Helper()
	ak, err := quote.ParseAK(v.AKPublic)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(ak.Public())
	if err != nil {
		t.Fatal(err)
	}
	akPEM := filepath.Join(dir, "ak.pem")
	os.WriteFile(akPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644)
	certPEM, _ := os.ReadFile(certPath)
	blk, _ := pem.Decode(certPEM)
	// The agent answers only the verifier that enrolled it (mutual TLS):
	// ask with the verifier's certificate; without it, it refuses.
	vcert, err := tls.LoadX509KeyPair(filepath.Join(dir, "verifier", certFile), filepath.Join(dir, "verifier", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	anon := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := anon.Get("https://" + addr + attest.PathLog + "?offset=0"); err == nil {
		resp.Body.Close()
		t.Fatalf("the agent answered a client without the verifier's certificate: %s", resp.Status)
	}
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates:       []tls.Certificate{vcert},
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if !bytes.Equal(cs.PeerCertificates[0].Raw, blk.Bytes) {
				return fmt.Errorf("not the agent's certificate")
			}
			return nil
		}}}}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	resp, err := cl.Get("https://" + addr + attest.PathQuote + "?nonce=" + hex.EncodeToString(nonce) + "&pcrs=sha256:0,1,7,13")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	q, err := attest.DecodeQuoteResponse(io.LimitReader(resp.Body, attest.MaxResponse))
	if err != nil {
		t.Fatal(err)
	}
	var vals []byte
	for _, i := range []int{0, 1, 7, 13} {
		vals = append(vals, q.PCRs["sha256"][i]...)
	}
	msg, sig, pcrs := filepath.Join(dir, "quote.msg"), filepath.Join(dir, "quote.sig"), filepath.Join(dir, "quote.pcrs")
	os.WriteFile(msg, q.Attest, 0o644)
	os.WriteFile(sig, q.Signature, 0o644)
	os.WriteFile(pcrs, vals, 0o644)
	check := func(nonceHex string) ([]byte, error) {
		return exec.Command("tpm2_checkquote", "-u", akPEM, "-m", msg, "-s", sig, "-f", pcrs,
			"-l", "sha256:0,1,7,13", "-g", "sha256", "-q", nonceHex).CombinedOutput()
	}
	if out, err := check(hex.EncodeToString(nonce)); err != nil {
		t.Fatalf("tpm2_checkquote rejects the agent's quote: %v\n%s", err, out)
	}
	// A test that can't fail is a defect: tpm2_checkquote must reject a
	// wrong nonce.
	nonce[0] ^= 1
	if out, err := check(hex.EncodeToString(nonce)); err == nil {
		t.Fatalf("tpm2_checkquote accepted a wrong nonce: %s", out)
	}
}
