// SPDX-License-Identifier: Apache-2.0

package netlimit

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/testenv"
)

// TestListen: at most n connections are accepted at a time, the others
// wait in the backlog until one is closed; closing a connection twice
// gives back one slot; closing the listener ends an Accept that waits for
// a slot.
func TestListen(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, 2)
	var accepted atomic.Int32
	conns := make(chan net.Conn, 8)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				acceptErr <- err
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
	// The Accept now waits for a slot; closing the listener ends it.
	l.Close()
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an Accept waiting for a slot did not end when the listener was closed")
	}
	for range 2 {
		(<-conns).Close()
	}
}
