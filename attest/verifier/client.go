// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/intactsec/intact/attest"
)

// agentClient talks to one agent over TLS with its certificate pinned,
// on a keep-alive connection.
type agentClient struct {
	base string
	http *http.Client
}

// errNoCert: the agent presented no certificate; errPinMismatch: another
// certificate than the one pinned at enrollment. Either way something
// answered at the agent's address, and it is not the enrolled agent:
// never "unreachable".
var (
	errNoCert      = errors.New("agent presented no certificate")
	errPinMismatch = errors.New("agent certificate differs from the one pinned at enrollment")
)

// ErrUnreachable is matched (errors.Is) by every *UnreachableError.
var ErrUnreachable = errors.New("agent unreachable")

// UnreachableError is an agent that did not answer: the connection could
// not be made (refused, no route, a name that does not resolve), it
// timed out (dial, TLS handshake, the answer within the request
// timeout), or it broke off (closed or reset before the answer was
// complete, the handshake included) — the network's and the host's
// failures, which a network attacker can always cause too. It is not an
// answer: an agent that answers with an HTTP error, something that is
// not the protocol, another certificate than the pinned one, or a TLS
// alert (it refuses the verifier's certificate) did answer, and that is
// an operational failure (see docs/attestation.md, "States").
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string        { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error        { return e.Err }
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// noAnswer reports whether err, from the HTTP transport or from reading
// an answer's body (never from decoding it), means the agent did not
// answer (UnreachableError).
func noAnswer(err error) bool {
	if errors.Is(err, errNoCert) || errors.Is(err, errPinMismatch) {
		return false // answered, as someone else
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		// "remote error": a TLS alert the agent sent (it refuses this
		// verifier); "local error": one this side sent. Any other
		// operation (dial, read, write) is the socket failing.
		return oe.Op != "remote error" && oe.Op != "local error"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// bodyReader remembers the error reading an answer's body returned (the
// transport's), to tell a connection that broke off from a body that
// does not decode.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// pinnedTLS accepts exactly the certificate pin (DER). With pin nil it
// accepts any certificate and records it in *seen (trust on first use,
// for enrollment only). It presents client, the verifier's certificate
// the agent pins (mutual TLS).
func pinnedTLS(pin []byte, seen *[]byte, client *tls.Certificate) *tls.Config {
	var certs []tls.Certificate
	if client != nil {
		certs = []tls.Certificate{*client}
	}
	return &tls.Config{
		Certificates:       certs,
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errNoCert
			}
			der := cs.PeerCertificates[0].Raw
			if pin == nil {
				if seen != nil {
					*seen = bytes.Clone(der)
				}
				return nil
			}
			if subtle.ConstantTimeCompare(der, pin) != 1 {
				return errPinMismatch
			}
			return nil
		},
	}
}

func newAgentClient(addr string, pin []byte, seen *[]byte, client *tls.Certificate, timeout time.Duration) *agentClient {
	tr := &http.Transport{
		TLSClientConfig:     pinnedTLS(pin, seen, client),
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     5 * time.Minute,
		ForceAttemptHTTP2:   false,
	}
	return &agentClient{base: "https://" + addr, http: &http.Client{Transport: tr, Timeout: timeout}}
}

func (c *agentClient) close() { c.http.CloseIdleConnections() }

// AgentError is an agent's refusal (a non-200 answer).
type AgentError struct {
	Status int
	Msg    string
}

func (e *AgentError) Error() string { return fmt.Sprintf("agent answered %d: %s", e.Status, e.Msg) }

// do sends a request to url (c.base and a path).
func (c *agentClient) do(ctx context.Context, method, url string, body any, decode func(io.Reader) error) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if noAnswer(err) {
			return &UnreachableError{Err: err}
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &AgentError{Status: resp.StatusCode, Msg: string(bytes.TrimSpace(msg))}
	}
	br := &bodyReader{r: resp.Body}
	err = decode(io.LimitReader(br, attest.MaxResponse+1))
	io.Copy(io.Discard, io.LimitReader(br, 4096)) // let the connection be reused
	if err != nil && br.err != nil && noAnswer(br.err) {
		// the answer broke off: not garbage, no answer
		return &UnreachableError{Err: fmt.Errorf("reading the answer: %w", br.err)}
	}
	return err
}

func (c *agentClient) enrollment(ctx context.Context) (e *attest.Enrollment, err error) {
	err = c.do(ctx, http.MethodGet, c.base+attest.PathEnrollment, nil, func(r io.Reader) error {
		e, err = attest.DecodeEnrollment(r)
		return err
	})
	return e, err
}

func (c *agentClient) activate(ctx context.Context, req *attest.ActivateRequest) (a *attest.ActivateResponse, err error) {
	err = c.do(ctx, http.MethodPost, c.base+attest.PathActivate, req, func(r io.Reader) error {
		a, err = attest.DecodeActivateResponse(r)
		return err
	})
	return a, err
}

// quote asks for a quote. selQuery is the selection as a query value
// (quoteSelQuery), computed once per agent.
func (c *agentClient) quote(ctx context.Context, nonce []byte, selQuery string, offset int64) (q *attest.QuoteResponse, err error) {
	// The URL in one allocation: prefix, hex nonce, selection, offset.
	b := make([]byte, 0, len(c.base)+len(attest.PathQuote)+len("?nonce=&pcrs=&offset=")+2*len(nonce)+len(selQuery)+20)
	b = append(b, c.base...)
	b = append(b, attest.PathQuote+"?nonce="...)
	b = hex.AppendEncode(b, nonce)
	b = append(b, "&pcrs="...)
	b = append(b, selQuery...)
	b = append(b, "&offset="...)
	b = strconv.AppendInt(b, offset, 10)
	err = c.do(ctx, http.MethodGet, string(b), nil, func(r io.Reader) error {
		q, err = attest.DecodeQuoteResponse(r)
		return err
	})
	return q, err
}

// quoteSelQuery is a selection as the pcrs query value.
func quoteSelQuery(sel attest.Selection) string { return url.QueryEscape(sel.String()) }

func (c *agentClient) log(ctx context.Context, offset int64) (l *attest.LogChunk, err error) {
	err = c.do(ctx, http.MethodGet, c.base+attest.PathLog+"?offset="+strconv.FormatInt(offset, 10), nil, func(r io.Reader) error {
		l, err = attest.DecodeLogChunk(r)
		return err
	})
	return l, err
}

// bootLog fetches the boot event log; nil when the agent has none (404).
func (c *agentClient) bootLog(ctx context.Context) (b []byte, err error) {
	err = c.do(ctx, http.MethodGet, c.base+attest.PathBootLog, nil, func(r io.Reader) error {
		b, err = io.ReadAll(io.LimitReader(r, attest.MaxBootLog+1))
		if err == nil && len(b) > attest.MaxBootLog {
			err = fmt.Errorf("boot event log larger than %d bytes", attest.MaxBootLog)
		}
		if err == nil && b == nil {
			b = []byte{}
		}
		return err
	})
	var ae *AgentError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	return b, err
}

func parseCert(der []byte) error {
	_, err := x509.ParseCertificate(der)
	return err
}
