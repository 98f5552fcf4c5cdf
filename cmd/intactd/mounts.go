package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// What a filesystem mark covers, and what it does not.
//
// intactd marks whole file systems (FAN_MARK_FILESYSTEM): every mount of a
// watched file system, in every mount namespace, now and later (systemd's
// private namespace, `unshare -Urm`, bind mounts, containers). A mount of
// *another* file system under a watched path (a tmpfs on /usr/local/tmp,
// a USB stick on /opt/x) is not covered. intactd logs a warning for each
// one it can see at start and whenever its mount table changes, and lists
// them in its status; it does not mark them (an administrator who wants
// them enforced adds them to watch). Mounts made in other mount namespaces
// are invisible to it.

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	Dev        uint64 // unix.Mkdev(major, minor)
	Root       string // the directory of the file system mounted here
	MountPoint string
	FSType     string
	Source     string
}

// parseMountinfo parses the text of /proc/PID/mountinfo. Malformed lines
// are skipped.
func parseMountinfo(b []byte) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if len(f) < 6 || sep < 6 || len(f) < sep+3 {
			continue
		}
		maj, min, ok := strings.Cut(f[2], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, mountEntry{
			Dev: unix.Mkdev(uint32(ma), uint32(mi)), Root: unescapeMount(f[3]),
			MountPoint: unescapeMount(f[4]), FSType: f[sep+1], Source: unescapeMount(f[sep+2]),
		})
	}
	return out
}

// unescapeMount decodes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pseudoFS are file systems without programs or data to appraise; a
// mount of one under a watched path is not reported.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true,
	"securityfs": true, "debugfs": true, "tracefs": true, "bpf": true, "mqueue": true,
	"pstore": true, "configfs": true, "fusectl": true, "binfmt_misc": true,
	"efivarfs": true, "autofs": true, "rpc_pipefs": true, "nsfs": true, "hugetlbfs": true,
}

// uncovered returns the mounts under a watched path (strictly below it)
// whose file system is not one of the watched ones, in mount table order.
func uncovered(mounts []mountEntry, watch []string, watched map[uint64]bool) []mountEntry {
	var out []mountEntry
	for _, m := range mounts {
		if watched[m.Dev] || pseudoFS[m.FSType] {
			continue
		}
		for _, w := range watch {
			if m.MountPoint != w && within(m.MountPoint, w) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// mountOf returns the entry of the mount whose mount point is path (the
// last one: the top of a stack of mounts), or false.
func mountOf(mounts []mountEntry, path string) (mountEntry, bool) {
	var e mountEntry
	found := false
	for _, m := range mounts {
		if m.MountPoint == path {
			e, found = m, true
		}
	}
	return e, found
}

// checkWholeFS refuses a watch path that mounts a subdirectory of its file
// system (a bind mount): the filesystem mark would enforce on all of it,
// not only on what the path shows.
func checkWholeFS(mounts []mountEntry, path string) error {
	m, ok := mountOf(mounts, filepath.Clean(path))
	if !ok {
		return nil // not in the table (checkMountPoint has the last word)
	}
	if m.Root != "/" {
		return fmt.Errorf("watch %s: a bind mount of %s of the file system on %s; intactd enforces on whole file systems (FAN_MARK_FILESYSTEM): watch a mount of its root", path, m.Root, m.Source)
	}
	return nil
}

// mountWatch reports the uncovered nested mounts intactd can see, at start
// and whenever its mount table changes.
type mountWatch struct {
	log     *slog.Logger
	watch   []string
	watched map[uint64]bool
	fd      int // raw: an os.File would register it with the runtime's epoll, which consumes POLLPRI
	mu      sync.Mutex
	seen    map[string]bool // mount point + dev of reported mounts
	current []string
	stop    chan struct{}
	done    chan struct{}
}

// newMountWatch opens the mount table (before any mark) and reports what
// it holds now.
func newMountWatch(log *slog.Logger, watch []string, watched map[uint64]bool) (*mountWatch, error) {
	fd, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	mw := &mountWatch{log: log, watch: watch, watched: watched, fd: fd, seen: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	mw.scan()
	go mw.run()
	return mw, nil
}

func (mw *mountWatch) scan() {
	b, err := readAllAt(mw.fd)
	if err != nil {
		mw.log.Error("reading the mount table", "err", err)
		return
	}
	var cur []string
	for _, m := range uncovered(parseMountinfo(b), mw.watch, mw.watched) {
		cur = append(cur, m.MountPoint)
		key := m.MountPoint + "\x00" + strconv.FormatUint(m.Dev, 10)
		if mw.seen[key] {
			continue
		}
		mw.seen[key] = true
		mw.log.Warn("nested mount not enforced: another file system under a watched path (add it to watch to enforce on it)",
			"mount", m.MountPoint, "fstype", m.FSType, "source", m.Source)
	}
	mw.mu.Lock()
	mw.current = cur
	mw.mu.Unlock()
}

// readAllAt reads the whole file from offset 0 (procfs regenerates it).
func readAllAt(fd int) ([]byte, error) {
	var buf bytes.Buffer
	b := make([]byte, 32<<10)
	var off int64
	for {
		n, err := unix.Pread(fd, b, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf.Bytes(), nil
		}
		buf.Write(b[:n])
		off += int64(n)
	}
}

// Uncovered lists the nested mounts seen in the last scan.
func (mw *mountWatch) Uncovered() []string {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	return slices.Clone(mw.current)
}

// run rescans on every change of the mount table (the kernel signals it
// with POLLPRI on mountinfo) until close.
func (mw *mountWatch) run() {
	defer close(mw.done)
	fd := mw.fd
	for {
		select {
		case <-mw.stop:
			return
		default:
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		n, err := unix.Poll(fds, 500)
		if err != nil && err != unix.EINTR {
			mw.log.Error("watching the mount table", "err", err)
			time.Sleep(time.Second)
			continue
		}
		if n > 0 && fds[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0 {
			mw.scan()
		}
	}
}

func (mw *mountWatch) close() {
	close(mw.stop)
	<-mw.done
	unix.Close(mw.fd)
}
