// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	if !Until(time.Minute, func() bool { return true }) {
		t.Error("a condition that holds: false")
	}
	var n atomic.Int32
	start := time.Now()
	if !Until(time.Minute, func() bool { return n.Add(1) >= 5 }) {
		t.Error("a condition that comes true: false")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("five checks took %v", took)
	}
	start = time.Now()
	calls := 0
	if Until(200*time.Millisecond, func() bool { calls++; return false }) {
		t.Error("a condition that never holds: true")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("gave up after %v, before the bound", took)
	}
	// At most every 5 ms, then every 50 ms at most: a handful, not
	// hundreds (a check that runs a command stays cheap).
	if calls < 2 || calls > 40 {
		t.Errorf("%d checks in 200 ms", calls)
	}
}
