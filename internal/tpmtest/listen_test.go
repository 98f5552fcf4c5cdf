// SPDX-License-Identifier: Apache-2.0

package tpmtest

import (
	"net"
	"os"
	"testing"
)

// TestListensOn: the readiness check tells whose socket a port is, so a
// swtpm of another test that took our port is not mistaken for ours.
func TestListensOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if ok, err := listensOn(os.Getpid(), port); !ok || err != nil {
		t.Fatalf("own listener on %d not found: %v", port, err)
	}
	sw := Start(t, Options{})
	if ok, _ := listensOn(os.Getpid(), sw.Port); ok {
		t.Fatalf("the swtpm's port %d counted as this process's", sw.Port)
	}
	if ok, _ := listensOn(os.Getpid(), port, sw.Port); ok {
		t.Fatal("all-ports check passed with one port missing")
	}
}
