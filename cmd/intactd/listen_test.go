// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/testenv"
)

// TestLimitListener: at most n connections are accepted at a time; the
// others wait in the backlog until one is closed.
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListen(raw, 2)
	defer l.Close()
	var accepted atomic.Int32
	conns := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns <- c
		}
	}()
	for range 5 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	wait := func(n int32) bool {
		return testenv.Until(10*time.Second, func() bool { return accepted.Load() >= n })
	}
	if !wait(2) {
		t.Fatalf("accepted %d, want 2", accepted.Load())
	}
	time.Sleep(200 * time.Millisecond) // time under test: no third accept while two are held
	if n := accepted.Load(); n != 2 {
		t.Fatalf("accepted %d with a limit of 2", n)
	}
	c := <-conns
	c.Close()
	c.Close() // a second close gives back nothing more
	if !wait(3) {
		t.Fatalf("a slot freed, but accepted %d, want 3", accepted.Load())
	}
	time.Sleep(200 * time.Millisecond) // time under test: no fourth accept after one close
	if n := accepted.Load(); n != 3 {
		t.Fatalf("accepted %d after one close, want 3", n)
	}
}

// TestListenerTimeouts: a client that connects and sends nothing, and
// one that keeps an idle keep-alive connection after a request, both get
// their connections closed, giving their slots back. (Before, an idle
// keep-alive connection was kept for ever.)
func TestListenerTimeouts(t *testing.T) {
	defer func(h, i time.Duration) { readHeaderTimeout, idleTimeout = h, i }(readHeaderTimeout, idleTimeout)
	readHeaderTimeout, idleTimeout = time.Second, time.Second
	sock := filepath.Join(t.TempDir(), "s")
	srv, err := serveControl(sock, func() enforce.Status { return enforce.Status{Pid: 7} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return !errors.Is(err, os.ErrDeadlineExceeded)
			}
		}
	}
	silent, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /v1/status HTTP/1.1\r\nHost: intactd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status over the keep-alive connection: %v %v", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(silent, 10*time.Second) {
		t.Error("a client that sends nothing is still connected after 10 s (header timeout 1 s)")
	}
	if !closedWithin(idle, 10*time.Second) {
		t.Error("an idle keep-alive connection is still open after 10 s (idle timeout 1 s)")
	}
}
