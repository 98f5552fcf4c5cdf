// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
)

// A client that connects and sends nothing (not even a TLS handshake)
// is disconnected after the header timeout, not held forever.
func TestSilentClientDisconnected(t *testing.T) {
	cert, err := selfSignedPair()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := agent.Listen("127.0.0.1:0", agent.MaxConns)
	if err != nil {
		t.Fatal(err)
	}
	srv := agent.NewServer(http.NotFoundHandler(), cert, agent.NewVerifierPin(), nil)
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(agent.ReadHeaderTimeout + 60*time.Second))
	var b [1]byte
	_, err = c.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("still connected after %v", time.Since(start))
	}
	if d := time.Since(start); d < agent.ReadHeaderTimeout/2 {
		t.Errorf("disconnected after %v, before the timeout", d)
	}
}

func selfSignedPair() (tls.Certificate, error) {
	certPEM, keyPEM, err := attest.NewSelfSigned("intact-agent")
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
