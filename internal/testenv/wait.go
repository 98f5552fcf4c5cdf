// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"testing"
	"time"
)

// Until checks cond until it holds or d has passed, and reports whether it
// held (checked once more at the deadline). Tests wait with it on what they
// can observe — a record written, a counter reached, a file appearing —
// instead of sleeping for a time they guess is enough: on a loaded machine
// a guess is too short, on an idle one too long. The bound d is generous
// (seconds, not milliseconds); it only stops a wait for something that
// never comes.
//
// It checks at once, then after 5 ms, doubling the pause up to 50 ms: a
// condition that comes true soon is seen soon, and one that runs a command
// is not run hundreds of times a second.
func Until(d time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	pause := 5 * time.Millisecond
	for {
		tick := time.NewTimer(pause)
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			tick.Stop()
			return cond()
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// WaitFor waits with Until and ends the test (Fatalf, naming what) if cond
// has not held within d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}
