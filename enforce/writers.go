// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Writers: a file open for write anywhere (a write(2) fd, or a shared
// writable mapping, which keeps the write count after its fd is closed)
// can change after it was appraised, with no mtime change (pages already
// dirty) and no fanotify event. The kernel's IMA reads the inode's write
// count (open_writers, ToMToU); intactd reads the same count: the kernel
// refuses a read lease (F_SETLEASE F_RDLCK) on a file that is open for
// write, so taking one on the event fd and dropping it at once tells. And
// a read lease that is kept is broken by the next open for write (or
// truncate), which the kernel signals with SIGIO: that is how cached
// verdicts learn of a new writer whose own open the kernel cache hid.

// WritersMode says what a file with writers gets.
type WritersMode string

// The modes.
const (
	// WritersFail: appraisal fails (verdict open-writers).
	WritersFail WritersMode = "fail"
	// WritersAppraise: appraised at every access, never cached.
	WritersAppraise WritersMode = "appraise"
)

// VerdictOpenWriters is the appraisal verdict of a file with writers
// under WritersFail.
const VerdictOpenWriters = "open-writers"

// hasWriters reports whether the file open as fd is open for write
// anywhere. An error (leases disabled, a file system without them) is
// returned as is: the caller treats it as writers (fail closed).
func hasWriters(fd int) (bool, error) {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK)
	switch {
	case err == nil:
		unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
		return false, nil
	case errors.Is(err, unix.EAGAIN):
		return true, nil
	}
	return true, err
}

// leases holds a read lease on every inode whose allow is cached in the
// kernel (an ignore mark): the lease breaks at the next open for write,
// whose own event the ignore mark hides. Each lease is a dup of an event fd.
type leases struct {
	mu   sync.Mutex
	max  int
	byFD map[int]inode
	held map[inode]int
}

func newLeases(max int) *leases {
	return &leases{max: max, byFD: map[int]inode{}, held: map[inode]int{}}
}

// hold takes a read lease on the inode open as fd, unless one is held
// already. It fails when the file has writers, the table is full, or fds
// run out: then nothing may be cached in the kernel.
func (l *leases) hold(fd int, k inode) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[k]; ok {
		return nil
	}
	if len(l.held) >= l.max {
		return errors.New("lease table full")
	}
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if _, err := unix.FcntlInt(uintptr(d), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		unix.Close(d)
		return err
	}
	l.held[k], l.byFD[d] = d, k
	return nil
}

// release drops the lease of inode k, if held.
func (l *leases) release(k inode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d, ok := l.held[k]; ok {
		l.drop(d, k)
	}
}

func (l *leases) releaseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for d, k := range l.byFD {
		l.drop(d, k)
	}
}

func (l *leases) drop(d int, k inode) {
	unix.FcntlInt(uintptr(d), unix.F_SETLEASE, unix.F_UNLCK)
	unix.Close(d)
	delete(l.byFD, d)
	delete(l.held, k)
}

// broken calls fn, with an fd on the inode, for every lease whose break
// is pending (someone opens the file for write: F_GETLEASE reports the
// type it is being broken to), then releases those leases, which lets the
// writer's open go on. fn runs first: the kernel cache is dropped before
// the writer can write.
func (l *leases) broken(fn func(fd int, k inode)) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for d, k := range l.byFD {
		t, err := unix.FcntlInt(uintptr(d), unix.F_GETLEASE, 0)
		if err == nil && t == unix.F_RDLCK {
			continue
		}
		fn(d, k)
		l.drop(d, k)
		n++
	}
	return n
}

func (l *leases) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// writeOpen reports whether the blocked open(2) of thread tid asks for
// write access (O_WRONLY or O_RDWR, or creat): such an opener counts
// itself among the file's writers when its permission event is decided.
// It reads /proc/TID/syscall (the system call the thread is blocked in,
// and its arguments); known is false when that cannot tell (another
// architecture, openat2, io_uring, no access).
func writeOpen(proc string, tid int32) (write, known bool) {
	b, err := os.ReadFile(proc + "/" + strconv.Itoa(int(tid)) + "/syscall")
	if err != nil {
		return false, false
	}
	return parseSyscall(b, runtime.GOARCH)
}

// openFlagsArg: per architecture, the open system calls and the index of
// their flags argument (-1: creat, always a write).
var openFlagsArg = map[string]map[uint64]int{
	"amd64":   {2: 1, 257: 2, 85: -1, 304: 2}, // open, openat, creat, open_by_handle_at
	"arm64":   {56: 2, 265: 2},                // openat, open_by_handle_at
	"386":     {5: 1, 295: 2, 8: -1, 342: 2},  // open, openat, creat, open_by_handle_at
	"arm":     {5: 1, 322: 2, 8: -1, 371: 2},  // open, openat, creat, open_by_handle_at
	"riscv64": {56: 2, 265: 2},                // openat, open_by_handle_at
}

// parseSyscall reads a /proc/TID/syscall line: "NR ARG1 ... ARG6 SP PC"
// (numbers in decimal, the rest 0x hex), "running" or "-1 SP PC".
func parseSyscall(b []byte, arch string) (write, known bool) {
	f := strings.Fields(string(b))
	if len(f) < 7 {
		return false, false
	}
	nr, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return false, false
	}
	idx, ok := openFlagsArg[arch][nr]
	if !ok {
		return false, false
	}
	if idx < 0 {
		return true, true
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(f[1+idx], "0x"), 16, 64)
	if err != nil {
		return false, false
	}
	return flags&unix.O_ACCMODE != unix.O_RDONLY, true
}
