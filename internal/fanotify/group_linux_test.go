// SPDX-License-Identifier: Apache-2.0

package fanotify_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/fanotify"
	"github.com/intactsec/intact/internal/fanotify/fantest"
)

// listener answers a permission group from a goroutine: events of this
// process are allowed at once; others are decided by decide(path).
type listener struct {
	g      *fanotify.Group
	decide func(path string, ev fanotify.Event) bool
	mu     sync.Mutex
	seen   []string
	done   chan struct{}
}

func listen(t *testing.T, g *fanotify.Group, decide func(string, fanotify.Event) bool) *listener {
	l := &listener{g: g, decide: decide, done: make(chan struct{})}
	self := int32(os.Getpid())
	go func() {
		defer close(l.done)
		buf := make([]byte, 64<<10)
		for {
			evs, err := g.Read(buf)
			for _, ev := range evs {
				allow := true
				if !ownThread(self, ev.Pid) && ev.Fd >= 0 {
					p, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(ev.Fd))
					allow = l.decide(p, ev)
					l.mu.Lock()
					l.seen = append(l.seen, filepath.Base(p))
					l.mu.Unlock()
				}
				if ev.Fd >= 0 {
					if err := g.Respond(ev.Fd, allow); err != nil {
						t.Errorf("respond: %v", err)
					}
					unix.Close(ev.Fd)
				}
			}
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
		}
	}()
	return l
}

// ownThread: events carry thread ids (FAN_REPORT_TID).
func ownThread(self, tid int32) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(int(self)) + "/task/" + strconv.Itoa(int(tid)))
	return tid == self || err == nil
}

func (l *listener) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.seen {
		if s == name {
			n++
		}
	}
	return n
}

func newPerm(t *testing.T, dir string) *fanotify.Group {
	t.Helper()
	g, err := fanotify.NewPermGroup()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.MarkMount(dir, fanotify.PermEvents); err != nil {
		g.Close()
		t.Fatal(err)
	}
	return g
}

func TestPermissionEvents(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
	if !child {
		return
	}
	fantest.Copy(t, "/bin/true", filepath.Join(dir, "good"), 0o755)
	fantest.Copy(t, "/bin/true", filepath.Join(dir, "bad"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o644)
	g := newPerm(t, dir)
	var execs atomic.Int32
	l := listen(t, g, func(p string, ev fanotify.Event) bool {
		if ev.Mask&fanotify.OpenExecPerm != 0 {
			execs.Add(1)
		}
		b := filepath.Base(p)
		return b != "bad" && b != "secret"
	})
	defer func() { g.Close(); <-l.done }()

	if out, err := fantest.Command(t, 10*time.Second, filepath.Join(dir, "good")).CombinedOutput(); err != nil {
		t.Errorf("exec good: %v %s", err, out)
	}
	err := fantest.Command(t, 10*time.Second, filepath.Join(dir, "bad")).Run()
	if !errors.Is(err, unix.EPERM) {
		t.Errorf("exec bad: %v, want EPERM", err)
	}
	if out, err := fantest.Command(t, 10*time.Second, "cat", filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		t.Errorf("cat data: %v %s", err, out)
	}
	out, err := fantest.Command(t, 10*time.Second, "cat", filepath.Join(dir, "secret")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Errorf("cat secret: %v %s, want EPERM", err, out)
	}
	// Our own opens are answered at once by the listener.
	if _, err := os.ReadFile(filepath.Join(dir, "secret")); err != nil {
		t.Errorf("own open: %v", err)
	}
	if execs.Load() < 2 {
		t.Errorf("saw %d exec events, want >= 2", execs.Load())
	}
}

func TestIgnoreMark(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
	if !child {
		return
	}
	path := filepath.Join(dir, "file")
	os.WriteFile(path, []byte("v1"), 0o644)
	g := newPerm(t, dir)
	l := listen(t, g, func(p string, ev fanotify.Event) bool {
		if err := g.IgnoreFD(ev.Fd, fanotify.OpenPerm); err != nil {
			t.Errorf("ignore: %v", err)
		}
		return true
	})
	defer func() { g.Close(); <-l.done }()
	cat := func() {
		if out, err := fantest.Command(t, 10*time.Second, "cat", path).CombinedOutput(); err != nil {
			t.Fatalf("cat: %v %s", err, out)
		}
	}
	cat()
	cat()
	cat()
	if n := l.count("file"); n != 1 {
		t.Fatalf("events after three opens = %d, want 1 (ignore mark)", n)
	}
	// A write clears the ignore mask (no FAN_MARK_IGNORED_SURV_MODIFY).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("v2")
	f.Close()
	cat()
	if n := l.count("file"); n != 2 {
		t.Fatalf("events after a write and an open = %d, want 2", n)
	}
	// Removing the ignore mark through an O_PATH descriptor.
	fd, err := unix.Open(path, unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := g.UnignoreFD(fd, fanotify.OpenPerm); err != nil {
		t.Fatal(err)
	}
	cat()
	if n := l.count("file"); n != 3 {
		t.Fatalf("events after unignore = %d, want 3", n)
	}
	if err := g.FlushInodeMarks(); err != nil {
		t.Fatal(err)
	}
	cat()
	if n := l.count("file"); n != 4 {
		t.Fatalf("events after flush = %d, want 4", n)
	}
}

func TestCloseAllowsPending(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
	if !child {
		return
	}
	path := filepath.Join(dir, "file")
	os.WriteFile(path, []byte("x"), 0o644)
	g := newPerm(t, dir)
	// Nobody reads the group: the child's open blocks until Close.
	cmd := fantest.Command(t, 20*time.Second, "cat", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, g) // its open waits for an answer
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("open pending while the group closed: %v, want allowed", err)
	}
}

func TestInterrupt(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
	if !child {
		return
	}
	g := newPerm(t, dir)
	defer g.Close()
	errc := make(chan error, 1)
	go func() { _, err := g.Read(make([]byte, 4096)); errc <- err }()
	waitReaderParked(t) // Interrupt ends a Read that waits
	g.Interrupt()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after Interrupt: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read not interrupted")
	}
}

func TestNotifyGroup(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
	if !child {
		return
	}
	path := filepath.Join(dir, "file")
	os.WriteFile(path, []byte("x"), 0o644)
	g, err := fanotify.NewNotifyGroup()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.MarkFilesystem(dir, fanotify.Modify|fanotify.Attrib|fanotify.CloseWrite); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	evs, err := g.Read(make([]byte, 4096))
	if err != nil || len(evs) == 0 {
		t.Fatalf("read: %v %v", evs, err)
	}
	ev := evs[0]
	if ev.Mask&fanotify.Attrib == 0 || ev.Fd != fanotify.NoFD || len(ev.Handle) == 0 {
		t.Fatalf("event = %+v, want an attrib FID event", ev)
	}
	mfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	fd, err := fanotify.OpenHandle(mfd, &ev)
	if err != nil {
		t.Fatalf("open by handle: %v", err)
	}
	defer unix.Close(fd)
	var a, b unix.Stat_t
	unix.Fstat(fd, &a)
	unix.Stat(path, &b)
	if a.Ino != b.Ino || a.Dev != b.Dev {
		t.Fatalf("handle names inode %d, want %d", a.Ino, b.Ino)
	}
}
