// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
)

// Which errors make an agent unreachable (no answer) and which are an
// answer (an operational failure): the decision of docs/attestation.md
// ("States"), each case against a real connection. Unreachable: refused,
// timed out (dial, handshake, answer), closed or reset before the answer
// was complete. Answered: an HTTP error, a body that is not the protocol
// (garbage, or JSON cut short inside a complete body), another
// certificate, a TLS alert (the agent refuses the verifier), plain HTTP.
func TestUnreachableErrors(t *testing.T) {
	client := testClientCert(t)
	tlsServer := func(t *testing.T, h http.HandlerFunc) *httptest.Server {
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = false
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	release := make(chan struct{})
	defer close(release)
	for _, tc := range []struct {
		name        string
		unreachable bool
		setup       func(t *testing.T) (addr string, pin []byte)
	}{
		{"connection refused", true, func(t *testing.T) (string, []byte) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return addr, []byte("x")
		}},
		{"no tls handshake (silent port)", true, func(t *testing.T) (string, []byte) {
			return rawServer(t, func(c net.Conn) { <-release; c.Close() }), []byte("x")
		}},
		{"no answer within the timeout", true, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"closed before answering", true, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				c, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					c.Close()
				}
			})
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"closed in the middle of the body", true, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
				c, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"attest\":\"")
				buf.Flush()
				c.Close()
			})
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"garbage", false, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>not json")) })
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"json cut short in a complete body", false, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"attest":"`)) })
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"http error (tpm busy)", false, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "tpm busy", http.StatusServiceUnavailable) })
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"another certificate", false, func(t *testing.T) (string, []byte) {
			srv := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {})
			return strings.TrimPrefix(srv.URL, "https://"), client.Certificate[0]
		}},
		{"the agent refuses the verifier's certificate", false, func(t *testing.T) (string, []byte) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			srv.EnableHTTP2 = false
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS13}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			return strings.TrimPrefix(srv.URL, "https://"), srv.Certificate().Raw
		}},
		{"plain http at the address", false, func(t *testing.T) (string, []byte) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			t.Cleanup(srv.Close)
			return strings.TrimPrefix(srv.URL, "http://"), []byte("x")
		}},
		{"not tls, not http", false, func(t *testing.T) (string, []byte) {
			return rawServer(t, func(c net.Conn) {
				bufio.NewReader(c).Peek(1)
				c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
				<-release
				c.Close()
			}), []byte("x")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, pin := tc.setup(t)
			c := newAgentClient(addr, pin, nil, client, 500*time.Millisecond)
			defer c.close()
			_, err := c.quote(context.Background(), make([]byte, attest.NonceSize), "sha256%3A13", 0)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ErrUnreachable); got != tc.unreachable {
				t.Fatalf("unreachable = %v, want %v: %v (%T)", got, tc.unreachable, err, errors.Unwrap(err))
			}
			t.Logf("%v", err)
		})
	}
}

func testClientCert(t *testing.T) *tls.Certificate {
	certPEM, keyPEM, err := attest.NewSelfSigned("intact-verifier")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// rawServer listens on a loopback port and hands every connection to
// serve in its own goroutine, until the test ends; it returns the address.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l.Addr().String()
}
