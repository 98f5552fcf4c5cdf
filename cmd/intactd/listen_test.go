// SPDX-License-Identifier: Apache-2.0

package main

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
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
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if accepted.Load() >= n {
				return true
			}
		}
		return false
	}
	if !wait(2) {
		t.Fatalf("accepted %d, want 2", accepted.Load())
	}
	time.Sleep(200 * time.Millisecond)
	if n := accepted.Load(); n != 2 {
		t.Fatalf("accepted %d with a limit of 2", n)
	}
	c := <-conns
	c.Close()
	c.Close() // a second close gives back nothing more
	if !wait(3) {
		t.Fatalf("a slot freed, but accepted %d, want 3", accepted.Load())
	}
	time.Sleep(200 * time.Millisecond)
	if n := accepted.Load(); n != 3 {
		t.Fatalf("accepted %d after one close, want 3", n)
	}
}
