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

// The listener holds at most its cap of connections: one more waits
// until one closes.
func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := agent.LimitListener(ln, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	var got []net.Conn
	for len(got) < 2 {
		select {
		case c := <-accepted:
			got = append(got, c)
		case <-time.After(30 * time.Second):
			t.Fatal("two connections not accepted")
		}
	}
	select {
	case <-accepted:
		t.Fatal("a third connection accepted over the cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	got[0].Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the third connection not accepted after one closed")
	}
	got[1].Close()
}

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
