// SPDX-License-Identifier: Apache-2.0

package fanotify_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/fanotify"
	"github.com/intactsec/intact/internal/testenv"
)

// waitReaderParked waits until a goroutine is in Group.Read with nothing
// to read: parked in the runtime's poller, not in read(2).
func waitReaderParked(t *testing.T) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, "a reader parked in the poller", func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "fanotify.(*Group).Read(") && strings.Contains(g, "runtime_pollWait") {
				return true
			}
		}
		return false
	})
}

// waitQueued waits until events are queued in g, unread: the accesses
// they stand for wait for an answer.
func waitQueued(t *testing.T, g *fanotify.Group) {
	t.Helper()
	testenv.WaitFor(t, 20*time.Second, "an event queued in the group", func() bool {
		n, err := unix.IoctlGetInt(g.Fd(), unix.TIOCINQ) // = FIONREAD
		return err == nil && n > 0
	})
}
