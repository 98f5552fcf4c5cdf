// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Reading a file of n bytes adds at least n to BytesRead.
func TestBytesRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := BytesRead()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	after, err := BytesRead()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 1<<20 {
		t.Errorf("read 1 MiB, BytesRead grew by %d", after-before)
	}
}

// CPUTime grows while the process computes.
func TestCPUTime(t *testing.T) {
	start := CPUTime()
	if start <= 0 {
		t.Fatalf("CPUTime = %v", start)
	}
	x := uint64(1)
	for deadline := time.Now().Add(time.Minute); CPUTime()-start < 20*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("a minute of computing, CPUTime grew by %v", CPUTime()-start)
		}
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1
		}
	}
	if x == 0 {
		t.Log(x) // keeps the loop
	}
}
