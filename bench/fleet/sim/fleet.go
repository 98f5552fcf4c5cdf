// SPDX-License-Identifier: Apache-2.0

package sim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/attest/ekcert"
)

// Options configure a Fleet.
type Options struct {
	// InitialRecords are measured after the boot_aggregate before the
	// agent is served (default 20).
	InitialRecords int
	// GrowEvery: an agent appends one record when it is asked for a quote
	// and its last record is at least this old (default 6s; negative:
	// the list never grows).
	GrowEvery time.Duration
	// IdleTimeout of the agents' HTTP servers (default 2m): longer than
	// the verifier's interval, so that connections are kept alive.
	IdleTimeout time.Duration
}

// Agent is one simulated agent.
type Agent struct {
	ID      string
	Addr    string // 127.0.0.1:port
	CertPEM []byte // its TLS certificate, for the verifier to pin
	TPM     *SoftTPM
	Log     *MemLog

	fleet    *Fleet
	handler  *agent.Agent
	srv      *http.Server
	ln       net.Listener
	mu       sync.Mutex
	lastQ    time.Time // last quote request
	lastGrow time.Time
	grown    int
}

// Fleet is a set of simulated agents served from this process, each on
// its own loopback listener, with counters of the quotes they served.
type Fleet struct {
	o Options

	mu     sync.Mutex
	agents []*Agent
	gaps   []time.Duration // between consecutive quotes of an agent, since the last Take

	quotes  atomic.Int64
	records atomic.Int64
	conns   atomic.Int64 // connections accepted (each one a TLS handshake)
}

// New returns an empty fleet.
func New(o Options) *Fleet {
	if o.InitialRecords == 0 {
		o.InitialRecords = 20
	}
	if o.GrowEvery == 0 {
		o.GrowEvery = 6 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	return &Fleet{o: o}
}

// Add makes n more agents, named prefix-<index>, and serves each on its
// own listener on 127.0.0.1.
func (f *Fleet) Add(prefix string, n int) ([]*Agent, error) {
	var out []*Agent
	for i := 0; i < n; i++ {
		f.mu.Lock()
		id := fmt.Sprintf("%s-%05d", prefix, len(f.agents))
		f.mu.Unlock()
		a, err := f.newAgent(id)
		if err != nil {
			return out, err
		}
		f.mu.Lock()
		f.agents = append(f.agents, a)
		f.mu.Unlock()
		out = append(out, a)
	}
	return out, nil
}

func (f *Fleet) newAgent(id string) (*Agent, error) {
	t, err := NewSoftTPM(rand.Reader)
	if err != nil {
		return nil, err
	}
	l, err := NewMemLog(t)
	if err != nil {
		return nil, err
	}
	for i := 0; i < f.o.InitialRecords; i++ {
		p, d := File(i)
		if err := l.Append(p, d); err != nil {
			return nil, err
		}
	}
	certPEM, keyPEM, err := attest.NewSelfSigned(id)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	// Mutual TLS as intact's agent: the verifier that enrolls the
	// agent is pinned, no other client is answered.
	pin := agent.NewVerifierPin()
	h, err := agent.New(agent.Config{TPM: t, AK: t.AK(), Log: l, LogPCR: LogPCR, CertDER: cert.Certificate[0],
		Logger: slog.New(slog.DiscardHandler), Verifier: pin})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &Agent{ID: id, Addr: ln.Addr().String(), CertPEM: certPEM, TPM: t, Log: l, fleet: f, handler: h,
		lastGrow: time.Now(), grown: f.o.InitialRecords}
	a.ln = tls.NewListener(ln, agent.ServerTLS(cert, pin))
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: f.o.IdleTimeout,
		ErrorLog: log.New(io.Discard, "", 0),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				f.conns.Add(1)
			}
		}}
	go a.srv.Serve(a.ln)
	return a, nil
}

// ServeHTTP counts quote requests, grows the list when due, and hands
// the request to intact's agent handler.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == attest.PathQuote {
		now := time.Now()
		a.mu.Lock()
		prev := a.lastQ
		a.lastQ = now
		grow := a.fleet.o.GrowEvery > 0 && now.Sub(a.lastGrow) >= a.fleet.o.GrowEvery
		if grow {
			a.lastGrow = now
			a.grown++
		}
		n := a.grown
		a.mu.Unlock()
		if grow {
			p, d := File(n)
			if err := a.Log.Append(p, d); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			a.fleet.records.Add(1)
		}
		a.fleet.quotes.Add(1)
		if !prev.IsZero() {
			a.fleet.mu.Lock()
			a.fleet.gaps = append(a.fleet.gaps, now.Sub(prev))
			a.fleet.mu.Unlock()
		}
	}
	a.handler.ServeHTTP(w, r)
}

// Agents returns the fleet's agents.
func (f *Fleet) Agents() []*Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.agents)
}

// Counts returns the quotes served, records appended and connections
// accepted since the fleet started.
func (f *Fleet) Counts() (quotes, records, conns int64) {
	return f.quotes.Load(), f.records.Load(), f.conns.Load()
}

// TakeGaps returns the times between consecutive quotes of each agent
// observed since the last call, and forgets them.
func (f *Fleet) TakeGaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.gaps
	f.gaps = nil
	return g
}

// Close stops every agent's server.
func (f *Fleet) Close() error {
	var errs []error
	for _, a := range f.Agents() {
		errs = append(errs, a.srv.Close())
	}
	return errors.Join(errs...)
}

// Policy returns a runtime policy (format 1) named name that allows
// every file the simulated agents measure.
func Policy(name string) []byte {
	digests := map[string][]string{}
	for i := 0; i < NumFiles; i++ {
		p, d := File(i)
		digests[p] = []string{"sha256:" + hex.EncodeToString(d)}
	}
	b, _ := json.Marshal(map[string]any{"intact_runtime_policy": 1, "name": name, "release": 1, "digests": digests})
	return b
}

// CertDER returns the agent's certificate (DER).
func (a *Agent) CertDER() []byte {
	b, _ := pem.Decode(a.CertPEM)
	if b == nil {
		return nil
	}
	return b.Bytes
}

// Shutdown stops serving gracefully.
func (f *Fleet) Shutdown(ctx context.Context) error {
	var errs []error
	for _, a := range f.Agents() {
		errs = append(errs, a.srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// EKHash is the ekcert.KeyHash of the agent's software EK: it has no
// maker's certificate, so a verifier trusts it only by an allowlist
// entry (verifier.Options.EKTrust, serve --ek-allow).
func (a *Agent) EKHash() (string, error) {
	ek, err := a.TPM.EndorsementKey()
	if err != nil {
		return "", err
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		return "", err
	}
	k, err := tpm2.Pub(*pub)
	if err != nil {
		return "", err
	}
	return ekcert.KeyHash(k)
}
