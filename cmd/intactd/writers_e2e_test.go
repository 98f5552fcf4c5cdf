// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/fanotify/fantest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/mlog"
)

// mmapWriter is a writer holding path open O_RDWR with a MAP_SHARED
// mapping. Its fd is closed at once: the mapping alone keeps the file open
// for write.
type mmapWriter struct {
	t   *testing.T
	mem []byte
}

func newMmapWriter(t *testing.T, path string) *mmapWriter {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s O_RDWR: %v", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %s: %v", path, err)
	}
	// Dirty the pages now (the same bytes): later writes through the
	// mapping fault no more and change no mtime.
	for i := 0; i < len(mem); i += 4096 {
		mem[i] ^= 0xff
		mem[i] ^= 0xff
	}
	w := &mmapWriter{t: t, mem: mem}
	t.Cleanup(w.close)
	return w
}

// replace rewrites old with new (same length) through the mapping.
func (w *mmapWriter) replace(old, new string) {
	w.t.Helper()
	i := bytes.Index(w.mem, []byte(old))
	if i < 0 || len(old) != len(new) {
		w.t.Fatalf("mapping holds %q, cannot replace %q", w.mem, old)
	}
	copy(w.mem[i:], new)
}

func (w *mmapWriter) close() {
	if w.mem != nil {
		unix.Munmap(w.mem)
		w.mem = nil
	}
}

// awaitRecord waits (up to 10 s: records follow the answers, later under
// load) for a record with msg naming path with verdict, then checks it.
func (w *world) awaitRecord(msg, path, verdict string) {
	w.t.Helper()
	testenv.Until(10*time.Second, func() bool {
		for _, r := range w.records(msg) {
			if r["path"] == path && r["verdict"] == verdict {
				return true
			}
		}
		return false
	})
	w.wantRecord(msg, path, verdict)
}

func mtimeOf(t *testing.T, path string) unix.Timespec {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mtim
}

// TestE2ESharedMmapWriter: a file open for write elsewhere (here: only a
// MAP_SHARED writable mapping, pages dirtied beforehand) can change after
// its appraisal with no mtime change and no event. intactd must not trust
// it: by default its appraisal fails (open-writers), with --open-writers
// appraise it is appraised at every access; no verdict is cached for it,
// in the daemon or in the kernel, and a writer that comes after a file was
// cached drops the cache (its open breaks intactd's read lease). The
// measurement list gets the kernel's open_writers violation. On tmpfs and
// ext4, with and without the kernel cache.
func TestE2ESharedMmapWriter(t *testing.T) {
	for _, fs := range []fantest.FS{fantest.Tmpfs, fantest.Ext4} {
		t.Run(string(fs), func(t *testing.T) { sharedMmapWriter(t, fs) })
	}
}

func sharedMmapWriter(t *testing.T, fs fantest.FS) {
	w := e2eWorldOn(t, fs, 4*time.Minute)
	if w == nil {
		return
	}
	// The scripts are made before the daemon watches (creating a file
	// under an appraise FILE_CHECK rule is denied: it has no label yet).
	var scripts []string
	for i := range 7 {
		p := filepath.Join(w.mnt, "script"+string(rune('a'+i)))
		if err := os.WriteFile(p, []byte("echo intact-good\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		w.intact("sign", "--key", w.key, p)
		scripts = append(scripts, p)
	}
	script := func() string {
		p := scripts[0]
		scripts = scripts[1:]
		return p
	}
	bash := func(p string) (int, string) { return w.run("bash " + p) }
	wantGood := func(p, when string) {
		t.Helper()
		if code, out := bash(p); code != 0 || !strings.Contains(out, "intact-good") {
			t.Errorf("%s: bash %s: exit %d %q, want the signed content", when, filepath.Base(p), code, out)
		}
	}
	wantDenied := func(p, when string) {
		t.Helper()
		if code, out := bash(p); code == 0 || strings.Contains(out, "intact-evil") || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("%s: bash %s: exit %d %q, want EPERM", when, filepath.Base(p), code, out)
		}
	}
	const pol = "appraise func=FILE_CHECK\n"
	for _, cacheFlag := range [][]string{nil, {"--no-kernel-cache"}} {
		// Default: a file with writers fails.
		w.start(pol, cacheFlag...)
		// A writer before the appraisal, pages dirtied.
		a := script()
		wr := newMmapWriter(t, a)
		before := mtimeOf(t, a)
		wantDenied(a, "writer mapped before the appraisal")
		wr.replace("good", "evil")
		if mtimeOf(t, a) != before {
			t.Logf("%s: the write through the mapping changed mtime (the attack does not need it)", fs)
		}
		wantDenied(a, "after the write through the mapping")
		wr.close()
		wantDenied(a, "writer gone, content changed") // content-changed
		w.awaitRecord("denied", a, "open-writers")
		w.awaitRecord("denied", a, "content-changed")

		// A writer after the file was appraised and cached.
		b := script()
		wantGood(b, "no writer")
		wantGood(b, "no writer, warm")
		if cacheFlag == nil {
			// The ignore mark and its lease come after the answer: wait
			// for them, so that the writer's open is the hidden one.
			if !testenv.Until(10*time.Second, func() bool { return w.status()["leases"].(float64) >= 1 }) {
				t.Fatalf("no lease for the kernel-cached %s: %v", b, w.status())
			}
		}
		wr = newMmapWriter(t, b)
		wr.replace("good", "evil")
		wantDenied(b, "writer came after the cache")
		wr.close()
		wantDenied(b, "writer gone, content changed")
		st := w.status()
		if st["open_writers"].(float64) < 2 {
			t.Errorf("status %v: want open_writers counted", st)
		}
		if cacheFlag == nil && st["lease_breaks"].(float64) < 1 {
			t.Errorf("status %v: the writer's open (hidden by the kernel cache) did not break the lease", st)
		}
		w.stop()

		// --open-writers appraise: appraised at every access, never cached.
		w.start(pol, append([]string{"--open-writers", "appraise"}, cacheFlag...)...)
		c := script()
		wr = newMmapWriter(t, c)
		wantGood(c, "appraise mode, writer mapped")
		wantGood(c, "appraise mode, writer mapped, again")
		wr.replace("good", "evil")
		wantDenied(c, "appraise mode, after the write through the mapping")
		wr.close()
		w.awaitRecord("denied", c, "content-changed")
		w.stop()
	}

	// The measurement list records the kernel's open_writers violation.
	os.Remove(filepath.Join(w.dir, "state", measurementList))
	w.start("measure func=FILE_CHECK\n", "--tpm", "sim")
	d := script()
	wr := newMmapWriter(t, d)
	wantGood(d, "measured with a writer")
	wr.close()
	w.stop()
	raw, err := os.ReadFile(filepath.Join(w.dir, "state", measurementList))
	if err != nil {
		t.Fatal(err)
	}
	list, err := mlog.ParseBinary(raw, mlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	violations, measured := 0, 0
	for _, r := range list.UnverifiedRecords() {
		fs, err := r.Fields()
		if err != nil || len(fs) < 2 || strings.TrimRight(string(fs[1].Data), "\x00") != d {
			continue
		}
		if r.Violation() {
			violations++
		} else {
			measured++
		}
	}
	// The writer's own open is measured (never cached, so again at
	// bash's read), bash's read with the file open for write gives the
	// violation.
	if violations != 1 || measured != 2 {
		t.Errorf("measurement list for %s: %d violations, %d measurements; want 1 and 2", d, violations, measured)
	}
}

// TestE2EWritersFailClosed: when the writer check cannot be made (here:
// no CAP_LEASE, so no lease on a file root does not own), the file counts
// as open for write and is denied, naming why; with CAP_LEASE (the shipped
// unit keeps it) the same file is allowed.
func TestE2EWritersFailClosed(t *testing.T) {
	w := e2eWorld(t, "setpriv")
	if w == nil {
		return
	}
	users := filepath.Join(w.mnt, "users-script")
	if err := os.WriteFile(users, []byte("echo intact-good\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.intact("sign", "--key", w.key, users)
	if err := os.Chown(users, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	const pol = "appraise func=FILE_CHECK\n"
	w.start(pol)
	if code, out := w.run("bash " + users); code != 0 || !strings.Contains(out, "intact-good") {
		t.Errorf("with CAP_LEASE: exit %d %q, want the script to run", code, out)
	}
	w.stop()

	w.wrap = []string{"setpriv", "--bounding-set", "-lease", "--"}
	w.start(pol)
	if code, out := w.run("bash " + users); code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("without CAP_LEASE: exit %d %q, want EPERM (fail closed)", code, out)
	}
	found := testenv.Until(10*time.Second, func() bool { // records follow the answers
		for _, r := range w.records("denied") {
			if r["path"] == users && r["verdict"] == "open-writers" && strings.Contains(r["reason"].(string), "cannot tell") {
				return true
			}
		}
		return false
	})
	if !found {
		t.Errorf("no open-writers denial saying it cannot tell:\n%s", w.log)
	}
	w.stop()
}
