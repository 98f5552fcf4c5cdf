// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/internal/netlimit"
)

// VerifierFile is the file, in the agent's state directory, of the
// verifier certificate(s) the agent accepts as TLS clients.
const VerifierFile = "verifier.crt"

// Errors of the verifier pin.
var (
	ErrNoVerifier    = errors.New("agent: no verifier enrolled this agent yet")
	ErrWrongVerifier = errors.New("agent: the client certificate is not the pinned verifier's")
)

// VerifierPin is the verifier an agent answers: the certificate(s) its
// TLS clients must present. It is pinned either by the operator (the
// verifier's verifier.crt placed as VerifierFile in the agent's state
// directory before it starts) or, when that file does not exist, at
// enrollment: the client certificate of the first successful credential
// activation is pinned and written to the file (trust on first use, as
// the agent's own certificate is on the verifier's side). From then on
// the TLS handshake refuses any other client. To move an agent to
// another verifier, the operator replaces or removes the file and
// restarts the agent.
type VerifierPin struct {
	path string

	mu   sync.RWMutex
	ders [][]byte
}

// NewVerifierPin is a pin kept in memory only, of ders (none: pinned
// at enrollment).
func NewVerifierPin(ders ...[]byte) *VerifierPin {
	p := &VerifierPin{}
	for _, d := range ders {
		p.ders = append(p.ders, bytes.Clone(d))
	}
	return p
}

// LoadVerifierPin reads the pinned verifier certificate(s) (PEM) from
// path; a missing file is an empty pin (pinned at enrollment).
func LoadVerifierPin(path string) (*VerifierPin, error) {
	p := &VerifierPin{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p.ders = append(p.ders, blk.Bytes)
	}
	if len(p.ders) == 0 {
		return nil, fmt.Errorf("%s: no certificate (remove the file to pin the verifier at enrollment)", path)
	}
	return p, nil
}

// Pinned reports whether a verifier is pinned.
func (p *VerifierPin) Pinned() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.ders) > 0
}

// Match reports whether der is a pinned certificate.
func (p *VerifierPin) Match(der []byte) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	ok := false
	for _, d := range p.ders {
		if len(d) == len(der) && subtle.ConstantTimeCompare(d, der) == 1 {
			ok = true
		}
	}
	return ok
}

// pin pins der if nothing is pinned yet (written to the file first),
// or checks it is pinned.
func (p *VerifierPin) pin(der []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ders) > 0 {
		for _, d := range p.ders {
			if bytes.Equal(d, der) {
				return nil
			}
		}
		return ErrWrongVerifier
	}
	if p.path != "" {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := atomicfile.WriteFile(p.path, b, 0o644, true); err != nil {
			return fmt.Errorf("pinning the verifier: %w", err)
		}
	}
	p.ders = [][]byte{bytes.Clone(der)}
	return nil
}

// clientCert is the request's TLS client certificate (DER), nil if none.
func clientCert(r *http.Request) []byte {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0].Raw
}

// authorize enforces the verifier pin on a request (Config.Verifier
// set): with a verifier pinned only it is answered; before, only the
// enrollment data and the credential activation (which pins it).
func (a *Agent) authorize(r *http.Request) error {
	p := a.cfg.Verifier
	der := clientCert(r)
	if der == nil {
		return errors.New("agent: no client certificate")
	}
	if p.Pinned() {
		if !p.Match(der) {
			return ErrWrongVerifier
		}
		return nil
	}
	if r.URL.Path == attest.PathEnrollment || r.URL.Path == attest.PathActivate {
		return nil
	}
	return ErrNoVerifier
}

// Server limits.
const (
	// MaxConns is how many connections the agent's listener holds at
	// once (its verifier needs one); more wait to be accepted.
	MaxConns = 16
	// Timeouts: a request's headers, a whole request, a response (a
	// list chunk of 4 MiB), and an idle keep-alive connection (the
	// verifier asks every interval, 2s by default).
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// ServerTLS is the agent's TLS configuration: TLS 1.3, its certificate,
// and a client certificate required from every client; once a verifier
// is pinned, the handshake refuses any other.
func ServerTLS(cert tls.Certificate, pin *VerifierPin) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("agent: no client certificate")
			}
			if pin.Pinned() && !pin.Match(raw[0]) {
				return ErrWrongVerifier
			}
			return nil
		},
	}
}

// NewServer is the agent's HTTPS server for h (an Agent, or a handler
// around one) with the verifier pin: mutual TLS (ServerTLS), the
// timeouts above, small headers. Serve it on Listen's listener with
// ServeTLS(ln, "", "").
func NewServer(h http.Handler, cert tls.Certificate, pin *VerifierPin, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         ServerTLS(cert, pin),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          errLog,
	}
}

// Listen listens on addr, holding at most max connections at once.
func Listen(addr string, max int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return netlimit.Listen(ln, max), nil
}
