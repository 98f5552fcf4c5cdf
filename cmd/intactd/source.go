// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	// fdErrors counts permission events whose fd the kernel could not
	// open (it denied them itself), by cause.
	fdErrors, fdLease, fdExhausted atomic.Int64
	reserve                        *fdReserve
}

func newPermSource(g *fanotify.Group, reserve *fdReserve) *permSource {
	return &permSource{g: g, buf: make([]byte, 256<<10), reserve: reserve}
}

func (s *permSource) Next() ([]enforce.Event, error) {
	evs, err := s.g.Read(s.buf)
	out := make([]enforce.Event, 0, len(evs))
	for _, ev := range evs {
		switch {
		case ev.Mask&fanotify.QOverflow != 0:
			s.overflows.Add(1)
		case ev.Fd < 0 && ev.Mask&fanotify.PermEvents != 0 && s.g.FDErrors:
			// FAN_REPORT_FD_ERROR: Fd is -errno; the kernel denied the
			// access. Nothing to answer.
			s.fdError(unix.Errno(-ev.Fd))
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
	// Without FAN_REPORT_FD_ERROR the failed open of the first event's fd
	// fails the read; the kernel denied that event. Never stop on it.
	var errno unix.Errno
	if errors.As(err, &errno) && (errno == unix.EMFILE || errno == unix.ENFILE || errno == unix.EWOULDBLOCK) {
		s.fdError(errno)
		err = nil
	}
	return out, err
}

// fdError counts an event the kernel denied because it could not open its
// fd for us. Out of descriptors, the reserve is released so that the next
// events (and the decisions' own reads of /proc) find descriptors again.
func (s *permSource) fdError(errno unix.Errno) {
	s.fdErrors.Add(1)
	switch errno {
	case unix.EWOULDBLOCK:
		s.fdLease.Add(1)
	case unix.EMFILE, unix.ENFILE:
		s.fdExhausted.Add(1)
		if s.reserve != nil {
			s.reserve.release()
		}
	}
}

// ReadStall is how long the current read has been blocked in the kernel.
func (s *permSource) ReadStall() time.Duration { return s.g.ReadStall() }

// fdReserve holds spare descriptors (on /dev/null) that are closed when
// the daemon runs out, and taken again once descriptors are free.
type fdReserve struct {
	mu       sync.Mutex
	fds      []int
	want     int
	released atomic.Int64
}

func newFDReserve(n int) (*fdReserve, error) {
	r := &fdReserve{want: n}
	if r.refill(); len(r.fds) != n {
		r.release()
		return nil, fmt.Errorf("cannot reserve %d spare descriptors (raise LimitNOFILE / ulimit -n)", n)
	}
	r.released.Store(0)
	return r, nil
}

// release closes the spare descriptors; it reports whether it had any.
func (r *fdReserve) release() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fds) == 0 {
		return false
	}
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = r.fds[:0]
	r.released.Add(1)
	return true
}

// refill takes spare descriptors again, up to the reserve's size; it
// reports whether the reserve is full.
func (r *fdReserve) refill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.fds) < r.want {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		r.fds = append(r.fds, fd)
	}
	return true
}

func (r *fdReserve) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fds)
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
