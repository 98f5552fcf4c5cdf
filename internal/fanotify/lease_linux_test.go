// SPDX-License-Identifier: Apache-2.0

package fanotify_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/fanotify"
	"github.com/intactsec/intact/internal/fanotify/fantest"
)

const envLease = "INTACT_FANOTIFY_LEASE_FILE"

// holdLease is the attacker of the lease tests, an unprivileged owner of
// the file: it takes a write lease (F_SETLEASE F_WRLCK), never releases
// it when the kernel asks (SIGIO is ignored), and takes it again as soon
// as the kernel revokes it.
func holdLease(path string) int {
	signal.Ignore(unix.SIGIO)
	f, err := os.Open(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ready := false
	// EAGAIN at first: another open file of it (the fanotify listener's
	// event fd for our own open, closed just after its answer); try
	// again, as an attacker would, for up to 10 s.
	start := time.Now()
	for {
		cur, err := unix.FcntlInt(f.Fd(), unix.F_GETLEASE, 0)
		if err == nil && cur == unix.F_UNLCK {
			if _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_WRLCK); err == nil && !ready {
				ready = true
				fmt.Println("leased")
			} else if err != nil && !ready && (err != unix.EAGAIN || time.Since(start) > 10*time.Second) {
				fmt.Println("error: F_SETLEASE:", err)
				return 1
			}
		}
		time.Sleep(10 * time.Millisecond) // time under test: the attacker's pace, re-arming the lease every 10 ms for ever
	}
}

// startLeaseHolder copies the test binary where nobody can run it and
// starts it as nobody (uid 65534) holding a write lease on path, which
// nobody owns.
func startLeaseHolder(t *testing.T, path string) *exec.Cmd {
	t.Helper()
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	bindir, err := os.MkdirTemp("", "intact-lease-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bindir) })
	os.Chmod(bindir, 0o755)
	self := filepath.Join(bindir, "holder")
	fantest.Copy(t, os.Args[0], self, 0o755)
	h := fantest.Command(t, 50*time.Second, self)
	h.Env = append(os.Environ(), envLease+"="+path)
	h.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := h.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Process.Kill(); h.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "leased" {
		t.Fatalf("lease holder: %q", line)
	}
	go io.Copy(io.Discard, out)
	return h
}

// leaseWorld is a tmpfs with a file an attacker holds a lease on and an
// unrelated one, under a listener that allows everything.
func leaseWorld(t *testing.T, dir string, g *fanotify.Group) (leased, other string, holder *exec.Cmd) {
	t.Helper()
	for d := filepath.Dir(dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody reaches the mount
	}
	leased, other = filepath.Join(dir, "leased"), filepath.Join(dir, "other")
	os.WriteFile(leased, []byte("attacker's file\n"), 0o644)
	os.WriteFile(other, []byte("unrelated\n"), 0o644)
	if err := g.MarkFilesystem(dir, fanotify.PermEvents); err != nil {
		t.Fatal(err)
	}
	l := listen(t, g, func(string, fanotify.Event) bool { return true })
	t.Cleanup(func() { g.Close(); <-l.done })
	holder = startLeaseHolder(t, leased)
	return leased, other, holder
}

// TestLeaseHolderDoesNotStallReader (issue 11 item 3): an unprivileged
// owner holding (and re-arming) a write lease on a file of a watched file
// system must not stall the reader: the kernel opens each event's fd
// inside read(2), and that open would wait for the lease break (45 s by
// default). With O_NONBLOCK in the event flags the open of the leased
// file fails at once and the kernel denies that access; every unrelated
// access is answered at once.
func TestLeaseHolderDoesNotStallReader(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, 2*time.Minute)
	if !child {
		return
	}
	g, err := fanotify.NewPermGroup()
	if err != nil {
		t.Fatal(err)
	}
	leased, other, _ := leaseWorld(t, dir, g)
	for i := range 3 {
		// The attacker's own access to its file: its event reaches the
		// reader first, and the reader must not wait for the lease.
		victim := fantest.Command(t, 60*time.Second, "cat", leased)
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- victim.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Errorf("round %d: opening the leased file: %v, want it denied", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("round %d: opening the leased file not answered in 10 s (reader stalled %s)", i, g.ReadStall())
		}
		// Then an unrelated access.
		start := time.Now()
		out, err := fantest.Command(t, 60*time.Second, "cat", other).CombinedOutput()
		if took := time.Since(start); err != nil || took > 5*time.Second {
			t.Errorf("round %d: unrelated read took %s (%v %s), want it answered at once", i, took, err, out)
		}
		if t.Failed() {
			return
		}
	}
}

// TestStalledReaderReported: when the kernel does block the reader (the
// event flags without O_NONBLOCK, as before), Group.ReadStall shows it,
// so that health checks (intact status, the systemd watchdog) see a
// stalled reader rather than an idle one.
func TestStalledReaderReported(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, 2*time.Minute)
	if !child {
		return
	}
	g, err := fanotify.NewBlockingPermGroup()
	if err != nil {
		t.Fatal(err)
	}
	leased, other, holder := leaseWorld(t, dir, g)
	waitReaderParked(t)
	if s := g.ReadStall(); s != 0 {
		t.Errorf("idle reader: ReadStall = %s, want 0", s)
	}
	// The victim's access: the reader's read(2) opens its event fd and
	// waits for the lease break. A signal to the reading thread ends that
	// wait early (the kernel then denies the event, and the victim
	// exits) before a second of stall is seen; then the kernel did not
	// block the reader, and the victim tries again (up to 20 s in all).
	var victims []*exec.Cmd
	exited := make(chan struct{}, 64)
	access := func() {
		v := fantest.Command(t, 60*time.Second, "cat", leased)
		if err := v.Start(); err != nil {
			t.Fatal(err)
		}
		victims = append(victims, v)
		go func() { v.Wait(); exited <- struct{}{} }()
	}
	access()
	blocked := fantest.Command(t, 60*time.Second, "cat", other)
	blocked.Start()
	ended := 0
	deadline := time.Now().Add(20 * time.Second)
	for g.ReadStall() < time.Second && time.Now().Before(deadline) {
		select {
		case <-exited:
			ended++
			t.Logf("a victim's access ended without a second of stall (reader interrupted); again")
			access()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if s := g.ReadStall(); s < time.Second {
		t.Fatalf("blocked reader: ReadStall = %s, want > 1s", s)
	}
	holder.Process.Kill() // the lease goes with its holder
	if err := blocked.Wait(); err != nil {
		t.Errorf("unrelated read after the holder died: %v", err)
	}
	for ; ended < len(victims); ended++ {
		<-exited
	}
	if s := g.ReadStall(); s > time.Second {
		t.Errorf("after the lease: ReadStall = %s", s)
	}
}
