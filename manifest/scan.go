// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
)

// ScanOptions configure Scan.
type ScanOptions struct {
	Algo   digest.Algo // content digests
	Xattrs []string    // names recorded, sorted
	Rules  *Rules
	// Jobs is the number of files hashed at once; 0 means one per CPU.
	Jobs int
	// CrossFS descends into other file systems mounted below the root;
	// without it a mount point and everything below it are left out.
	CrossFS bool
	// Hashed and Entries, if not nil, count the bytes hashed and the
	// entries found (for progress output).
	Hashed, Entries *atomic.Int64
}

// ScanError is an entry that could not be read. Path is relative to the
// root, as entry paths are.
type ScanError struct {
	Path string
	Err  error
}

func (e *ScanError) Error() string { return Escape(e.Path) + ": " + e.Err.Error() }
func (e *ScanError) Unwrap() error { return e.Err }

// The flags of every open: never follow a symlink, never block on a FIFO
// or a device, never take a controlling terminal.
const (
	openFile = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	openDir  = openFile | unix.O_DIRECTORY
)

// Scan walks the tree at dir and calls fn with each entry, in manifest
// order (ComparePaths), as Writer.Add takes them. root is the absolute
// path the rules name the tree by (dir itself, or where the manifest saw
// it). The walk holds directory file descriptors: every name is opened
// relative to its directory with O_NOFOLLOW, and what is recorded comes
// from the descriptor that was opened (fstat, read, fgetxattr), so a name
// swapped during the walk can never lead it out of the tree. An entry
// that cannot be read reaches fn with a *ScanError and a nil entry. If fn
// returns an error, Scan stops and returns it.
func Scan(dir, root string, opts ScanOptions, fn func(*Entry, error) error) error {
	ch, ok := opts.Algo.CryptoHash()
	if !ok {
		return fmt.Errorf("hash algorithm %s not supported", opts.Algo)
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	rootFD, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) // the root itself may be a symlink, as find -H
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(rootFD, &st); err != nil {
		unix.Close(rootFD)
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	s := &scanner{
		opts:  opts,
		root:  root,
		dev:   st.Dev,
		queue: make(chan *job, 8*jobs),
		work:  make(chan *job, 8*jobs),
		newHash: func() hash.Hash {
			return ch.New()
		},
	}
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for j := range s.work {
				s.hashFile(j, buf)
				close(j.done)
			}
		}()
	}
	go func() {
		excluded, attrs := opts.Rules.For(root)
		if !excluded {
			s.dir(rootFD, "/", &st, attrs)
		} else {
			unix.Close(rootFD)
		}
		close(s.queue)
		close(s.work)
	}()
	var ferr error
	for j := range s.queue {
		<-j.done
		if opts.Entries != nil {
			opts.Entries.Add(1)
		}
		if ferr != nil {
			continue // drain: the walker stops at its next entry
		}
		if j.err != nil {
			ferr = fn(nil, &ScanError{Path: j.path, Err: j.err})
		} else {
			ferr = fn(j.e, nil)
		}
		if ferr != nil {
			s.stop.Store(true)
		}
	}
	wg.Wait()
	return ferr
}

type scanner struct {
	opts    ScanOptions
	root    string
	dev     uint64
	queue   chan *job // every entry, in order
	work    chan *job // regular files to read
	stop    atomic.Bool
	newHash func() hash.Hash
}

type job struct {
	path string
	e    *Entry
	fd   int
	err  error
	done chan struct{}
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (s *scanner) emit(j *job) { s.queue <- j }

func (s *scanner) fail(path string, err error) {
	s.emit(&job{path: path, err: err, done: closed})
}

func absPath(root, rel string) string {
	switch {
	case rel == "/":
		return root
	case root == "/":
		return rel
	}
	return root + rel
}

// dir records the directory open at fd (path rel, stat st, attributes
// attrs) and everything below it, then closes fd.
func (s *scanner) dir(fd int, rel string, st *unix.Stat_t, attrs Attrs) {
	defer unix.Close(fd)
	e := entryFromStat(rel, st, attrs)
	if attrs&AttrXattrs != 0 {
		xs, err := s.fdXattrs(fd)
		if err != nil {
			s.fail(rel, err)
			return
		}
		e.Xattrs = xs
	}
	s.emit(&job{e: e, done: closed})

	names, err := readNames(fd)
	if err != nil {
		s.fail(rel, fmt.Errorf("reading directory: %w", err))
		return
	}
	slices.Sort(names)
	deeper := s.opts.Rules.below(absPath(s.root, rel))
	for _, name := range names {
		if s.stop.Load() {
			return
		}
		p := rel + "/" + name
		if rel == "/" {
			p = "/" + name
		}
		a := attrs
		if deeper {
			var excl bool
			if excl, a = s.opts.Rules.For(absPath(s.root, p)); excl {
				continue
			}
		}
		s.entry(fd, name, p, a)
	}
}

func (s *scanner) entry(dirfd int, name, p string, attrs Attrs) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		s.fail(p, err)
		return
	}
	if st.Dev != s.dev && !s.opts.CrossFS {
		return // a mount point: another file system
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, ok := s.open(dirfd, name, p, openDir, &st)
		if !ok {
			return
		}
		s.dir(fd, p, &st, attrs)
	case unix.S_IFREG:
		fd, ok := s.open(dirfd, name, p, openFile, &st)
		if !ok {
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			// swapped for something else after the fstatat: record
			// what was opened (a FIFO opened non-blocking, a device).
			unix.Close(fd)
			s.special(dirfd, name, p, &st, attrs)
			return
		}
		j := &job{path: p, e: entryFromStat(p, &st, attrs), fd: fd, done: make(chan struct{})}
		s.emit(j)
		s.work <- j
	default:
		s.special(dirfd, name, p, &st, attrs)
	}
}

// open opens the entry name of dirfd (path p) that fstatat found to be a
// directory or a regular file, with flags (never following a symlink),
// and puts the opened descriptor's fstat in st. What was opened is
// checked as the fstatat's result was: on another file system (a mount
// that appeared meanwhile) it is left out. ok is false when there is
// nothing to record (a failure is reported).
func (s *scanner) open(dirfd int, name, p string, flags int, st *unix.Stat_t) (fd int, ok bool) {
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if err != nil {
		s.fail(p, err)
		return -1, false
	}
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		s.fail(p, err)
		return -1, false
	}
	if st.Dev != s.dev && !s.opts.CrossFS {
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

// special records a symlink, device, FIFO or socket, which are never
// opened: they are named through their directory's descriptor.
func (s *scanner) special(dirfd int, name, p string, st *unix.Stat_t, attrs Attrs) {
	e := entryFromStat(p, st, attrs)
	if e.Type == TypeSymlink && e.Has&AttrTarget != 0 {
		t, err := readlinkat(dirfd, name)
		if err != nil {
			s.fail(p, err)
			return
		}
		e.Target = t
	}
	if e.Has&AttrXattrs != 0 {
		at := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
		xs, err := s.xattrs(func(b []byte) (int, error) { return unix.Llistxattr(at, b) },
			func(n string, b []byte) (int, error) { return unix.Lgetxattr(at, n, b) })
		if err != nil {
			s.fail(p, err)
			return
		}
		e.Xattrs = xs
	}
	s.emit(&job{e: e, done: closed})
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 4 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
		if size > 1<<16 {
			return "", errors.New("symlink target too long")
		}
	}
}

func entryFromStat(p string, st *unix.Stat_t, attrs Attrs) *Entry {
	e := &Entry{Path: p, Mode: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = TypeFile
		e.Size = st.Size
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFLNK:
		e.Type = TypeSymlink
	case unix.S_IFCHR:
		e.Type = TypeChar
	case unix.S_IFBLK:
		e.Type = TypeBlock
	case unix.S_IFIFO:
		e.Type = TypeFIFO
	default:
		e.Type = TypeSocket
	}
	if e.Type == TypeChar || e.Type == TypeBlock {
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	e.Has = attrs & recordable(e.Type)
	return e
}

// hashFile reads the regular file of j (its descriptor, opened by the
// walk) for its digest and xattrs, and closes it.
func (s *scanner) hashFile(j *job, buf []byte) {
	defer unix.Close(j.fd)
	if s.stop.Load() {
		j.err = errors.New("stopped")
		return
	}
	e := j.e
	if e.Has&AttrContent != 0 {
		h := s.newHash()
		var n int64
		for {
			m, err := unix.Read(j.fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				j.err = fmt.Errorf("reading: %w", err)
				return
			}
			if m == 0 {
				break
			}
			h.Write(buf[:m])
			n += int64(m)
		}
		e.Digest = h.Sum(nil)
		if s.opts.Hashed != nil {
			s.opts.Hashed.Add(n)
		}
	}
	if e.Has&AttrXattrs != 0 {
		xs, err := s.fdXattrs(j.fd)
		if err != nil {
			j.err = err
			return
		}
		e.Xattrs = xs
	}
}

// fdXattrs returns the selected xattrs of the object open at fd.
func (s *scanner) fdXattrs(fd int) ([]Xattr, error) {
	return s.xattrs(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) })
}

// xattrs returns the selected xattrs an object has, by listing its names
// first (one system call for most files, which have none of them).
func (s *scanner) xattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]Xattr, error) {
	if len(s.opts.Xattrs) == 0 {
		return nil, nil
	}
	buf := make([]byte, 1024)
	n, err := list(buf)
	for errors.Is(err, unix.ERANGE) && len(buf) < 1<<20 {
		buf = make([]byte, 4*len(buf))
		n, err = list(buf)
	}
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing xattrs: %w", err)
	}
	var out []Xattr
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		if _, ok := slices.BinarySearch(s.opts.Xattrs, name); !ok {
			continue
		}
		v := make([]byte, 256)
		m, err := get(name, v)
		for errors.Is(err, unix.ERANGE) && len(v) < 1<<16 {
			v = make([]byte, 1<<16)
			m, err = get(name, v)
		}
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading xattr %s: %w", name, err)
		}
		out = append(out, Xattr{Name: name, Value: v[:m]})
	}
	slices.SortFunc(out, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readNames returns the names in the directory open at fd, without
// changing fd's offset for anyone else (it reads through a duplicate).
func readNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", openDir, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	return f.Readdirnames(-1)
}
