// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/fanotify"
)

// permSource is the engine's event source on a fanotify permission group.
type permSource struct {
	g   *fanotify.Group
	buf []byte
	// overflows counts FAN_Q_OVERFLOW (never expected: the queue is
	// unlimited).
	overflows atomic.Int64
}

func newPermSource(g *fanotify.Group) *permSource {
	return &permSource{g: g, buf: make([]byte, 256<<10)}
}

func (s *permSource) Next() ([]enforce.Event, error) {
	evs, err := s.g.Read(s.buf)
	out := make([]enforce.Event, 0, len(evs))
	for _, ev := range evs {
		switch {
		case ev.Mask&fanotify.QOverflow != 0:
			s.overflows.Add(1)
		case ev.Fd < 0:
		case ev.Mask&fanotify.PermEvents == 0:
			unix.Close(ev.Fd)
		default:
			out = append(out, enforce.Event{Fd: ev.Fd, Pid: ev.Pid, Exec: ev.Mask&fanotify.OpenExecPerm != 0})
		}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %v", enforce.ErrInterrupted, err)
	}
	return out, err
}

func (s *permSource) Interrupt()                       { s.g.Interrupt() }
func (s *permSource) Respond(fd int, allow bool) error { return s.g.Respond(fd, allow) }

func (s *permSource) Ignore(fd int, exec bool) error {
	mask := fanotify.OpenPerm
	if exec {
		mask = fanotify.OpenExecPerm
	}
	return s.g.IgnoreFD(fd, mask)
}

func (s *permSource) Unignore(fd int) error {
	if fd < 0 {
		return nil
	}
	return s.g.UnignoreFD(fd, fanotify.PermEvents)
}

func (s *permSource) UnignoreAll() error { return s.g.FlushInodeMarks() }
