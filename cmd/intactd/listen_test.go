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
	"testing"
	"time"

	"github.com/intactsec/intact/enforce"
)

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
