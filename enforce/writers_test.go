// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/testenv"
)

func TestParseSyscall(t *testing.T) {
	for _, c := range []struct {
		line, arch   string
		write, known bool
	}{
		{"257 0xffffff9c 0x7ffd1000 0x0 0x0 0x0 0x0 0x7ffd 0x7f00\n", "amd64", false, true},        // openat O_RDONLY
		{"257 0xffffff9c 0x7ffd1000 0x241 0x1b6 0x0 0x0 0x7ffd 0x7f00", "amd64", true, true},       // openat O_WRONLY|O_CREAT|O_TRUNC
		{"257 0xffffff9c 0x7ffd1000 0x80002 0x0 0x0 0x0 0x7ffd 0x7f00", "amd64", true, true},       // openat O_RDWR|O_CLOEXEC
		{"2 0x7ffd1000 0x8000 0x0 0x0 0x0 0x0 0x7ffd 0x7f00", "amd64", false, true},                // open O_RDONLY|O_LARGEFILE
		{"2 0x7ffd1000 0x1 0x0 0x0 0x0 0x0 0x7ffd 0x7f00", "amd64", true, true},                    // open O_WRONLY
		{"85 0x7ffd1000 0x1a4 0x0 0x0 0x0 0x0 0x7ffd 0x7f00", "amd64", true, true},                 // creat
		{"56 0xffffff9c 0x7ffd1000 0x2 0x0 0x0 0x0 0x7ffd 0x7f00", "arm64", true, true},            // openat O_RDWR
		{"437 0xffffff9c 0x7ffd1000 0x7ffd2000 0x18 0x0 0x0 0x7ffd 0x7f00", "amd64", false, false}, // openat2: flags behind a pointer
		{"0 0x3 0x7ffd1000 0x10 0x0 0x0 0x0 0x7ffd 0x7f00", "amd64", false, false},                 // read
		{"running", "amd64", false, false},
		{"-1 0x7ffd 0x7f00", "amd64", false, false},
		{"257 0xffffff9c 0x7ffd1000 zz 0x0 0x0 0x0 0x7ffd 0x7f00", "amd64", false, false},
		{"257 0xffffff9c 0x7ffd1000 0x2 0x0 0x0 0x0 0x7ffd 0x7f00", "mips", false, false},
		{"", "amd64", false, false},
	} {
		if w, k := parseSyscall([]byte(c.line), c.arch); w != c.write || k != c.known {
			t.Errorf("%q (%s) = %v %v, want %v %v", c.line, c.arch, w, k, c.write, c.known)
		}
	}
}

func FuzzParseSyscall(f *testing.F) {
	f.Add([]byte("257 0xffffff9c 0x7ffd1000 0x241 0x1b6 0x0 0x0 0x7ffd 0x7f00"))
	f.Add([]byte("running"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if w, k := parseSyscall(b, "amd64"); w && !k {
			t.Fatal("write without known")
		}
	})
}

// TestHasWriters: the kernel refuses a read lease on a file open for
// write, also when only a shared writable mapping keeps it open.
func TestHasWriters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(r)
	if w, err := hasWriters(r); w || err != nil {
		t.Fatalf("no writer: %v %v", w, err)
	}
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := hasWriters(r); !w || err != nil {
		t.Errorf("shared writable mapping: %v %v, want writers", w, err)
	}
	unix.Munmap(m)
	if w, err := hasWriters(r); w || err != nil {
		t.Errorf("after munmap: %v %v", w, err)
	}
}

// TestWritersNotTrusted: a file open for write fails its appraisal by
// default (open-writers) and is never cached; with WritersAppraise it is
// appraised at every access.
func TestWritersNotTrusted(t *testing.T) {
	h := start(t, "appraise func=FILE_CHECK\n", nil)
	good := h.file(t, "good", "good content")
	wfd, err := unix.Open(good, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.src.decide(t, good, false) {
		t.Error("a file open for write was allowed")
	}
	if h.app.calls.Load() != 0 {
		t.Error("appraised although it has writers")
	}
	if h.eng.cache.len() != 0 || h.src.ignores.Load() != 0 {
		t.Error("a verdict was cached for a file with writers")
	}
	unix.Close(wfd)
	if !h.src.decide(t, good, false) {
		t.Error("no writers any more: denied")
	}

	h = start(t, "appraise func=FILE_CHECK\n", func(c *Config) { c.Writers = WritersAppraise })
	good = h.file(t, "good", "good content")
	wfd, err = unix.Open(good, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(wfd)
	for range 2 {
		if !h.src.decide(t, good, false) {
			t.Error("appraise mode: denied")
		}
	}
	if n := h.app.calls.Load(); n != 2 {
		t.Errorf("appraise mode: %d appraisals for 2 accesses, want 2 (never cached)", n)
	}
	if h.eng.cache.len() != 0 || h.src.ignores.Load() != 0 {
		t.Error("appraise mode: a verdict was cached for a file with writers")
	}
}

// TestLeaseBreakDropsKernelCache: a file cached in the kernel holds a read
// lease; an open for write (whose own event the kernel cache would hide)
// breaks it, the engine drops the cached verdict and the ignore mark, and
// the writer's open goes on at once (not after lease-break-time).
func TestLeaseBreakDropsKernelCache(t *testing.T) {
	h := start(t, "appraise func=FILE_CHECK\n", nil)
	good := h.file(t, "good", "good content")
	if !h.src.decide(t, good, false) {
		t.Fatal("denied")
	}
	waitFor(t, "a lease for the cached file", func() bool { return h.eng.leases.len() == 1 && h.src.ignores.Load() == 1 })
	unignores := h.src.unignores.Load()
	opened := make(chan error, 1)
	began := time.Now()
	go func() {
		fd, err := unix.Open(good, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
		// The SIGIO path, not the 2 s re-check (which first runs 2 s
		// after the engine started, just before this test).
		if d := time.Since(began); d > 1500*time.Millisecond {
			t.Errorf("the writer's open returned after %s: the lease-break signal was not handled", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the writer's open waited for the lease-break time: the break was not handled")
	}
	if h.src.unignores.Load() == unignores || h.eng.cache.len() != 0 || h.eng.leases.len() != 0 {
		t.Errorf("after the break: unignores %d (was %d), cache %d, leases %d; want the cache dropped",
			h.src.unignores.Load(), unignores, h.eng.cache.len(), h.eng.leases.len())
	}
	if h.eng.Stats().LeaseBreaks != 1 {
		t.Errorf("lease breaks = %d", h.eng.Stats().LeaseBreaks)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, what, cond)
}

// BenchmarkOpenLeased: what a read lease held on a kernel-cached file
// adds to every open of it (the kernel's break_lease check), against the
// same open with no lease (sub-benchmarks none and leased).
func BenchmarkOpenLeased(b *testing.B) {
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, []byte("small file"), 0o644); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64)
	open := func(b *testing.B) {
		for b.Loop() {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Read(fd, buf)
			unix.Close(fd)
		}
	}
	b.Run("none", open)
	l := newLeases(1)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := l.hold(fd, inode{1, 1}); err != nil {
		b.Fatal(err)
	}
	defer l.releaseAll()
	b.Run("leased", open)
}

// BenchmarkHasWriters: the writer check each acting decision makes (a read
// lease taken and dropped on the event fd).
func BenchmarkHasWriters(b *testing.B) {
	p := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(p, []byte("small file"), 0o644); err != nil {
		b.Fatal(err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	for b.Loop() {
		if w, err := hasWriters(fd); w || err != nil {
			b.Fatal(w, err)
		}
	}
}

// TestWriterDuringDecision: a writer that opens the file while it is
// being appraised and measured fails the decision (open-writers), nothing
// is cached, and the measurement list gets the kernel's ToMToU violation
// after the measurement.
func TestWriterDuringDecision(t *testing.T) {
	app := &gatedInspector{started: make(chan struct{}), release: make(chan struct{})}
	h := start(t, "appraise func=FILE_CHECK\nmeasure func=FILE_CHECK\n", func(c *Config) {
		c.Inspector, c.Deadline = app, 30*time.Second
	})
	slow := h.file(t, "slow", "good, read while a writer comes")
	answer := h.src.submit(t, slow, false, 4242)
	<-app.started
	wfd, err := unix.Open(slow, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(wfd)
	close(app.release)
	select {
	case a := <-answer:
		if a {
			t.Error("allowed although a writer came during the decision")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	ms := h.meas.all()
	if len(ms) != 2 || ms[0].Violation != "" || ms[1].Violation != "ToMToU" || !bytes.Equal(ms[1].Digest, make([]byte, 32)) {
		t.Errorf("measurements %+v, want the file then a ToMToU violation", ms)
	}
	if h.eng.cache.len() != 0 || h.src.ignores.Load() != 0 {
		t.Error("cached")
	}
}

// gatedInspector inspects as fakeInspector ("good" files pass), once
// released.
type gatedInspector struct {
	fakeInspector
	started, release chan struct{}
}

func (a *gatedInspector) Inspect(f *os.File, path string, need Need) Inspection {
	close(a.started)
	<-a.release
	return a.fakeInspector.Inspect(f, path, need)
}
