// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/attest/ekcert"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
	"github.com/intactsec/intact/tpm"
)

const (
	interval = 300 * time.Millisecond
	logPCR   = 13
)

// testAgent is an agent on a swtpm, serving intact's list over TLS on
// loopback, with a hook to tamper with its answers.
type testAgent struct {
	t      *testing.T
	sw     *tpmtest.Swtpm
	dir    string
	list   string
	id     *agent.Identity
	agent  *agent.Agent
	srv    *httptest.Server
	ln     *switchListener
	tamper func(w http.ResponseWriter, r *http.Request, next http.Handler) bool

	mu      sync.Mutex
	offsets []int64      // offsets of the quote requests served
	gate    sync.RWMutex // held by reboot: requests wait
}

func newTestAgent(t *testing.T, sw *tpmtest.Swtpm) *testAgent {
	t.Helper()
	return newTestAgentWithBootLog(t, sw, "")
}

// newTestAgentWithBootLog serves bootLog as the agent's TCG event log.
func newTestAgentWithBootLog(t *testing.T, sw *tpmtest.Swtpm, bootLog string) *testAgent {
	t.Helper()
	if sw == nil {
		sw = tpmtest.Start(t, tpmtest.Options{})
	}
	a := &testAgent{t: t, sw: sw, dir: t.TempDir()}
	a.list = filepath.Join(a.dir, "measurements")
	tp := agent.Reopening{Spec: sw.Spec()}
	var err error
	if a.id, err = agent.LoadOrCreateIdentity(a.dir, tp); err != nil {
		t.Fatal(err)
	}
	a.measure() // boot_aggregate
	// Mutual TLS as intactd and intact-agent serve it: the verifier
	// that enrolls the agent is pinned (in a.dir/verifier.crt).
	pin, err := agent.LoadVerifierPin(filepath.Join(a.dir, agent.VerifierFile))
	if err != nil {
		t.Fatal(err)
	}
	a.agent, err = agent.New(agent.Config{TPM: tp, AK: a.id.AK, Log: agent.NewFileLog(a.list, attest.LogIntact),
		LogPCR: logPCR, BootLog: bootLog, CertDER: a.id.Cert.Certificate[0], Logger: slog.New(slog.DiscardHandler), Verifier: pin})
	if err != nil {
		t.Fatal(err)
	}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	// The agent's port can go down (connections refused) and come back
	// on the same address (down, up).
	a.ln = &switchListener{cur: a.srv.Listener, addr: a.srv.Listener.Addr()}
	a.srv.Listener = a.ln
	a.srv.TLS = agent.ServerTLS(a.id.Cert, pin)
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *testAgent) serve(w http.ResponseWriter, r *http.Request) {
	// A request waits for a reboot in progress: the machine answers
	// before it or after it, never halfway (see reboot).
	a.gate.RLock()
	defer a.gate.RUnlock()
	if r.URL.Path == attest.PathQuote {
		off, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
		a.mu.Lock()
		a.offsets = append(a.offsets, off)
		a.mu.Unlock()
	}
	a.mu.Lock()
	tamper := a.tamper
	a.mu.Unlock()
	if tamper != nil && tamper(w, r, a.agent) {
		return
	}
	a.agent.ServeHTTP(w, r)
}

func (a *testAgent) setTamper(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	a.mu.Lock()
	a.tamper = f
	a.mu.Unlock()
}

func (a *testAgent) addr() string { return strings.TrimPrefix(a.srv.URL, "https://") }

// down takes the agent off the network as a stopped agent is: its port
// refuses connections, and the connections it had are closed.
func (a *testAgent) down() {
	a.t.Helper()
	a.ln.down()
	a.srv.CloseClientConnections()
}

// up listens on the agent's address again.
func (a *testAgent) up() {
	a.t.Helper()
	if err := a.ln.up(); err != nil {
		a.t.Fatal(err)
	}
}

// switchListener is a listener whose port can be closed (connections
// refused) and opened again on the same address, for a server that
// keeps running.
type switchListener struct {
	addr   net.Addr
	mu     sync.Mutex
	cur    net.Listener  // nil while down
	wake   chan struct{} // closed by up or Close
	closed bool
}

func (l *switchListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		cur, wake, closed := l.cur, l.wake, l.closed
		l.mu.Unlock()
		switch {
		case closed:
			return nil, net.ErrClosed
		case cur == nil:
			<-wake
			continue
		}
		c, err := cur.Accept()
		if err == nil {
			return c, nil
		}
		l.mu.Lock()
		same := l.cur == cur && !l.closed
		l.mu.Unlock()
		if same {
			return nil, err
		}
	}
}

func (l *switchListener) down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		l.cur.Close()
		l.cur, l.wake = nil, make(chan struct{})
	}
}

func (l *switchListener) up() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		return nil
	}
	n, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		return err
	}
	l.cur = n
	close(l.wake)
	return nil
}

func (l *switchListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.cur != nil {
		return l.cur.Close()
	}
	close(l.wake)
	return nil
}

func (l *switchListener) Addr() net.Addr { return l.addr }

// withTPM opens the swtpm (the agent opens it per request).
func (a *testAgent) withTPM(fn func(*tpm.TPM)) {
	a.t.Helper()
	tp, err := tpm.Open(a.sw.Spec())
	if err != nil {
		a.t.Fatal(err)
	}
	defer tp.Close()
	fn(tp)
}

// measure measures files (creating each with its name as content) into
// intact's list, as intactd does when they run.
func (a *testAgent) measure(paths ...string) {
	a.t.Helper()
	a.withTPM(func(tp *tpm.TPM) {
		m, err := agent.OpenMeasurer(tp, a.list, logPCR)
		if err != nil {
			a.t.Fatal(err)
		}
		defer m.Close()
		for _, p := range paths {
			if err := os.WriteFile(p, []byte(p), 0o755); err != nil {
				a.t.Fatal(err)
			}
			if err := m.MeasureFile(p); err != nil {
				a.t.Fatal(err)
			}
		}
	})
}

// reboot resets the swtpm (CMD_INIT on its control channel: PCRs reset,
// reset count up) and starts a new list, as a reboot does.
func (a *testAgent) reboot() {
	a.t.Helper()
	// The reboot is instant for the verifier: requests wait until the
	// new boot's list exists (an attestation in between would fail, and
	// a failure before a reboot is a gap, see TestGapAfterReboot).
	a.gate.Lock()
	defer a.gate.Unlock()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(a.sw.CtrlPort))
	if err != nil {
		a.t.Fatal(err)
	}
	defer c.Close()
	var req [8]byte
	binary.BigEndian.PutUint32(req[:4], 2) // CMD_INIT
	c.Write(req[:])
	var rsp [4]byte
	if _, err := io.ReadFull(c, rsp[:]); err != nil || binary.BigEndian.Uint32(rsp[:]) != 0 {
		a.t.Fatalf("CMD_INIT: %x %v", rsp, err)
	}
	if err := os.Remove(a.list); err != nil {
		a.t.Fatal(err)
	}
	a.measure()
}

func (a *testAgent) quoteOffsets() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.offsets...)
}

func sum(s string) string {
	d := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(d[:])
}

// policyFor allows the given files (content = path, as measure makes them).
func policyFor(files ...string) []byte {
	d := map[string][]string{}
	for _, f := range files {
		d[f] = []string{sum(f)}
	}
	b, _ := json.Marshal(map[string]any{"intact_runtime_policy": 1, "name": "test", "digests": d})
	return b
}

// testVerifier is a verifier on an SQLite store.
type testVerifier struct {
	t      *testing.T
	db     string
	st     store.Store
	v      *verifier.Verifier
	cancel context.CancelFunc
	done   chan struct{}

	ekMu    sync.Mutex
	ekAllow ekcert.Allowlist // EKs allowed (allow); the default EK trust
}

// allow allowlists the EK of a's TPM for enrollment (a swtpm has no EK
// certificate unless made with tpmtest.Options.EKCert).
func (tv *testVerifier) allow(a *testAgent) {
	tv.t.Helper()
	tv.allowHash(a.sw.EKHash(tv.t))
}

// allowHash allowlists an EK by its ekcert.KeyHash.
func (tv *testVerifier) allowHash(h string) {
	tv.t.Helper()
	tv.ekMu.Lock()
	defer tv.ekMu.Unlock()
	if err := tv.ekAllow.Add(h, "test"); err != nil {
		tv.t.Fatal(err)
	}
}

func (tv *testVerifier) ekTrust() (*ekcert.Trust, error) {
	tv.ekMu.Lock()
	defer tv.ekMu.Unlock()
	a := &ekcert.Allowlist{}
	for _, h := range tv.ekAllow.Hashes() {
		n, _ := tv.ekAllow.Lookup(h)
		a.Add(h, n)
	}
	return &ekcert.Trust{Allow: a}, nil
}

func startVerifier(t *testing.T, db string) *testVerifier {
	t.Helper()
	return startVerifierClock(t, db, nil)
}

// startVerifierClock is startVerifier with the verifier's clock (nil:
// time.Now).
func startVerifierClock(t *testing.T, db string, now func() time.Time) *testVerifier {
	t.Helper()
	return startVerifierWith(t, db, func(o *verifier.Options) { o.Now = now })
}

// startVerifierWith is startVerifier with options set by opt.
func startVerifierWith(t *testing.T, db string, opt func(*verifier.Options)) *testVerifier {
	t.Helper()
	if db == "" {
		db = filepath.Join(t.TempDir(), "verifier.db")
	}
	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	tv := &testVerifier{t: t, db: db, st: st, done: make(chan struct{})}
	o := verifier.Options{Store: st, Interval: interval, Timeout: 20 * time.Second, FlushEvery: 20 * time.Millisecond,
		EKTrust: tv.ekTrust, ClientCert: verifierCert(t)}
	if opt != nil {
		opt(&o)
	}
	v, err := verifier.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tv.v, tv.cancel = v, cancel
	go func() { v.Run(ctx); close(tv.done) }()
	t.Cleanup(tv.stop)
	// No wait for Run: an agent enrolled before Run has begun is in the
	// store, and Run (or its first lease round) starts it.
	return tv
}

// verifierCert is the verifiers' client certificate in these tests, the
// same for every verifier (a restarted verifier is the one its agents
// pinned).
func verifierCert(t testing.TB) *tls.Certificate {
	testCertOnce.Do(func() {
		certPEM, keyPEM, err := attest.NewSelfSigned("intact-verifier")
		if err == nil {
			var c tls.Certificate
			c, err = tls.X509KeyPair(certPEM, keyPEM)
			testCert = &c
		}
		testCertErr = err
	})
	if testCertErr != nil {
		t.Fatal(testCertErr)
	}
	return testCert
}

var (
	testCertOnce sync.Once
	testCert     *tls.Certificate
	testCertErr  error
)

func (tv *testVerifier) stop() {
	select {
	case <-tv.done:
		return
	default:
	}
	tv.cancel()
	<-tv.done
	tv.st.Close()
}

func (tv *testVerifier) enroll(a *testAgent, id string, policy []byte) {
	tv.t.Helper()
	ctx := context.Background()
	if _, err := tv.v.PutPolicy(ctx, "p-"+id, policy); err != nil {
		tv.t.Fatal(err)
	}
	tv.allow(a)
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: id, Addr: a.addr(), Policy: "p-" + id}); err != nil {
		tv.t.Fatalf("Enroll: %v", err)
	}
}

// wait polls the stored agent until cond holds, for at most d.
func (tv *testVerifier) wait(id string, d time.Duration, what string, cond func(*store.Agent) bool) *store.Agent {
	tv.t.Helper()
	var a *store.Agent
	var err error
	if !testenv.Until(d, func() bool {
		a, err = tv.st.GetAgent(context.Background(), id)
		return err == nil && cond(a)
	}) {
		tv.t.Fatalf("after %v, agent %s not %s: %+v (err %v)", d, id, what, a, err)
	}
	return a
}

func state(s string) func(*store.Agent) bool {
	return func(a *store.Agent) bool { return a.State == s }
}

// rewriteQuote lets f change the agent's quote responses.
func rewriteQuote(f func(q *attest.QuoteResponse)) func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.URL.Path != attest.PathQuote {
			return false
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var q attest.QuoteResponse
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &q) != nil {
			w.WriteHeader(500)
			return true
		}
		f(&q)
		json.NewEncoder(w).Encode(&q)
		return true
	}
}

func reasons(a *store.Agent) string { return strings.Join(a.Reasons, "; ") }

var _ = fmt.Sprint
var _ = bytes.Equal

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
