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
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/intactsec/intact/attest"
)

// agentClient talks to one agent over TLS with its certificate pinned,
// on a keep-alive connection.
type agentClient struct {
	base string
	http *http.Client
}

// errNoCert: the agent presented no certificate.
var errNoCert = errors.New("agent presented no certificate")

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
				return errors.New("agent certificate differs from the one pinned at enrollment")
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
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &AgentError{Status: resp.StatusCode, Msg: string(bytes.TrimSpace(msg))}
	}
	err = decode(io.LimitReader(resp.Body, attest.MaxResponse+1))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // let the connection be reused
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
