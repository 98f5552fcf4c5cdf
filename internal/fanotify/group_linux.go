// SPDX-License-Identifier: Apache-2.0

package fanotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Group is one fanotify group. Its fd is non-blocking and registered with
// the Go runtime's poller, so Read blocks only its goroutine and Close
// wakes it. Respond and the mark calls are safe for concurrent use.
type Group struct {
	f    *os.File
	name string
	// legacyIgnore: the kernel rejected FAN_MARK_IGNORE (before 6.0),
	// use FAN_MARK_IGNORED_MASK instead.
	legacyIgnore atomic.Bool
	// readStart is when the read(2) in progress began (unix ns), 0 when
	// none is: a read that stays in the kernel is a stalled reader.
	readStart atomic.Int64
	closed    atomic.Bool
	// FDErrors: the kernel reports an event whose fd it could not open
	// with the error in the fd field (FAN_REPORT_FD_ERROR, 6.13+).
	FDErrors bool
}

// NewPermGroup creates a permission group: FAN_CLASS_CONTENT (decisions on
// final content), FAN_UNLIMITED_QUEUE (no overflow, hence no fail-open
// drop of permission events), FAN_REPORT_TID (events carry the accessing
// thread's id, not its process's: credentials are per thread), event fds
// opened read-only, close-on-exec and O_NONBLOCK. It needs CAP_SYS_ADMIN.
//
// O_NONBLOCK in the event flags: the kernel opens each event's fd inside
// read(2), and that open breaks leases (__break_lease). Without
// O_NONBLOCK it waits for the lease holder, up to lease-break-time (45 s),
// and every other event waits behind it: any file owner could stall
// every decision by holding a write lease (F_SETLEASE) on a file of a
// watched file system. With it the open fails at once with EWOULDBLOCK
// and the kernel denies that one event (TestLeaseHolderDoesNotStallReader).
//
// FAN_REPORT_FD_ERROR (6.13+, used when the kernel has it): an fd the
// kernel cannot open (EWOULDBLOCK, EMFILE, ENFILE) is reported in the
// event (Fd = -errno; the kernel has denied it) instead of failing the
// read.
func NewPermGroup() (*Group, error) {
	const flags = unix.FAN_CLASS_CONTENT | unix.FAN_UNLIMITED_QUEUE | unix.FAN_REPORT_TID | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK
	const eventFlags = unix.O_RDONLY | unix.O_LARGEFILE | unix.O_CLOEXEC | unix.O_NONBLOCK
	g, err := newGroup("fanotify-perm", flags|unix.FAN_REPORT_FD_ERROR, eventFlags)
	if errors.Is(err, unix.EINVAL) {
		return newGroup("fanotify-perm", flags, eventFlags)
	}
	if err == nil {
		g.FDErrors = true
	}
	return g, err
}

// NewNotifyGroup creates a FID-mode notification group (FAN_REPORT_FID)
// for modify/attrib/close-write events: they carry a file handle, no fd.
func NewNotifyGroup() (*Group, error) {
	return newGroup("fanotify-notify",
		unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
}

func newGroup(name string, flags, eventFlags uint) (*Group, error) {
	fd, err := unix.FanotifyInit(flags, eventFlags)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init (%s): %w", name, err)
	}
	return &Group{f: os.NewFile(uintptr(fd), name), name: name}, nil
}

// Read blocks until events arrive and decodes them into buf's events.
// After Close it returns an error wrapping os.ErrClosed, after Interrupt
// one wrapping os.ErrDeadlineExceeded. Other errors (EMFILE, ENFILE: the
// kernel could not open the first event's fd and denied that event) leave
// the group usable.
func (g *Group) Read(buf []byte) ([]Event, error) {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for range 1024 {
			g.readStart.Store(time.Now().UnixNano())
			n, rerr = unix.Read(int(fd), buf)
			g.readStart.Store(0)
			switch {
			case rerr == unix.EINTR:
				continue
			case rerr == unix.EAGAIN:
				// Also the answer when the kernel could not open an event's
				// fd without blocking (a lease, on kernels without
				// FAN_REPORT_FD_ERROR): it denied that event and more may
				// be queued. The runtime's poller is edge-triggered: read
				// on while the queue holds events, else wait.
				if queued(int(fd)) > 0 {
					continue
				}
				return false
			}
			return true
		}
		return true
	})
	if err != nil {
		if g.closed.Load() {
			return nil, fmt.Errorf("%s: %w", g.name, os.ErrClosed)
		}
		return nil, err
	}
	if rerr == unix.EAGAIN {
		rerr = nil // 1024 denied events in a row: let the caller run
	}
	if rerr != nil {
		return nil, fmt.Errorf("read %s: %w", g.name, rerr)
	}
	return Decode(buf[:n])
}

// queued returns the number of bytes of events waiting in the group.
func queued(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // = FIONREAD
	if err != nil {
		return 0
	}
	return n
}

// ReadStall returns how long the read(2) in progress has been in the
// kernel, or 0. An idle reader waits in the runtime's poller, not in
// read(2): a read that lasts is one the kernel blocks (opening an event's
// fd), and every event behind it waits.
func (g *Group) ReadStall() time.Duration {
	if t := g.readStart.Load(); t != 0 {
		return time.Since(time.Unix(0, t))
	}
	return 0
}

// Interrupt makes a blocked Read, and every later one, return
// os.ErrDeadlineExceeded, without closing the group (so that events read
// so far can still be answered).
func (g *Group) Interrupt() { g.f.SetReadDeadline(time.Unix(1, 0)) }

// Respond answers the permission event whose fd is fd: allow, or deny
// (the access fails with EPERM). The caller closes fd afterwards, never
// before (the kernel matches the answer by fd number).
func (g *Group) Respond(fd int, allow bool) error {
	resp := uint32(unix.FAN_DENY)
	if allow {
		resp = unix.FAN_ALLOW
	}
	return g.write(encodeResponse(fd, resp))
}

func (g *Group) write(b []byte) error {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(gfd uintptr) bool {
		_, werr = unix.Write(int(gfd), b)
		return !errors.Is(werr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("fanotify response: %w", werr)
	}
	return nil
}

func (g *Group) mark(flags uint, mask uint64, dirfd int, path string) error {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return err
	}
	var merr error
	if err := rc.Control(func(gfd uintptr) {
		merr = unix.FanotifyMark(int(gfd), flags, mask, dirfd, path)
	}); err != nil {
		return err
	}
	return merr
}

// MarkMount marks the mount at path (FAN_MARK_MOUNT) for mask.
func (g *Group) MarkMount(path string, mask uint64) error {
	if err := g.mark(unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT, mask, unix.AT_FDCWD, path); err != nil {
		return fmt.Errorf("fanotify mark mount %s: %w", path, err)
	}
	return nil
}

// MarkFilesystem marks the whole file system holding path
// (FAN_MARK_FILESYSTEM) for mask.
func (g *Group) MarkFilesystem(path string, mask uint64) error {
	if err := g.mark(unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, mask, unix.AT_FDCWD, path); err != nil {
		return fmt.Errorf("fanotify mark filesystem %s: %w", path, err)
	}
	return nil
}

// IgnoreFD adds mask to the ignore mask of an evictable inode mark on the
// file open as fd (an event fd: exactly the inode that was decided). The
// ignore mask is not FAN_MARK_IGNORED_SURV_MODIFY: the kernel clears it at
// the next modification of the file. Events of mask on that inode then no
// longer reach the group.
func (g *Group) IgnoreFD(fd int, mask uint64) error {
	const common = unix.FAN_MARK_ADD | unix.FAN_MARK_EVICTABLE
	if !g.legacyIgnore.Load() {
		err := g.mark(common|unix.FAN_MARK_IGNORE, mask, fd, "")
		if !errors.Is(err, unix.EINVAL) {
			return wrapMark("ignore", err)
		}
		g.legacyIgnore.Store(true)
	}
	return wrapMark("ignore", g.mark(common|unix.FAN_MARK_IGNORED_MASK, mask, fd, ""))
}

// UnignoreFD removes mask from the ignore mask of fd's inode. fd may be an
// O_PATH descriptor. No mark is not an error.
func (g *Group) UnignoreFD(fd int, mask uint64) error {
	// fanotify_mark resolves a NULL path with fdget, which refuses O_PATH
	// descriptors; the /proc/self/fd link names the same inode.
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	flag := uint(unix.FAN_MARK_IGNORE)
	if g.legacyIgnore.Load() {
		flag = unix.FAN_MARK_IGNORED_MASK
	}
	err := g.mark(unix.FAN_MARK_REMOVE|flag, mask, unix.AT_FDCWD, p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return wrapMark("unignore", err)
}

// FlushInodeMarks removes every inode mark of the group (all ignore
// marks), keeping mount and file-system marks.
func (g *Group) FlushInodeMarks() error {
	return wrapMark("flush", g.mark(unix.FAN_MARK_FLUSH, 0, unix.AT_FDCWD, ""))
}

func wrapMark(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("fanotify %s mark: %w", op, err)
}

// Fd returns the group's descriptor number (for ordering checks; do not
// read or close it).
func (g *Group) Fd() int {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}

// Close closes the group. For a permission group the kernel then allows
// every event still pending, read or unread.
func (g *Group) Close() error {
	g.closed.Store(true)
	return g.f.Close()
}

// OpenHandle opens the file a FID event names, O_PATH (no open events),
// relative to mountFD, a directory fd (not O_PATH) on the same file system.
func OpenHandle(mountFD int, ev *Event) (int, error) {
	h := unix.NewFileHandle(ev.HandleType, ev.Handle)
	return unix.OpenByHandleAt(mountFD, h, unix.O_PATH|unix.O_CLOEXEC)
}
