// SPDX-License-Identifier: Apache-2.0

// Package walk visits the regular files of trees in parallel: one file
// system unless told otherwise, never following symlinks, with results
// handed back in walk order.
//
// The walk never resolves a path twice. Every directory is opened
// relative to its parent's descriptor (openat with O_NOFOLLOW|O_DIRECTORY)
// and every file relative to its directory's descriptor
// (O_NOFOLLOW|O_NONBLOCK|O_NOCTTY), then checked with fstat: a directory
// or file swapped for a symlink, a FIFO or a file of another file system
// while the walk runs is skipped and reported (*SkipError), never
// followed, never blocked on. Work is handed the open file and the open
// directory: callers read, label (fsetxattr) and write beside the file
// (Dir.WriteFile) through descriptors, so that what they write lands on
// what they read, inside the tree.
package walk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/atomicfile"
)

// DefaultMaxSize is the size above which commands skip a file unless
// told otherwise: above any real executable or library (the largest are
// around 2 GiB), small enough that a sparse file of terabytes cannot keep
// a walk hashing zeros for hours.
const DefaultMaxSize = 4 << 30

// Options configure Run.
type Options struct {
	// Recursive descends into directories given as roots; without it a
	// directory root is reported as an error entry.
	Recursive bool
	// CrossFS descends into other file systems mounted below a root.
	CrossFS bool
	// Jobs is the number of files worked on at once; 0 means one per CPU.
	Jobs int
	// MaxSize skips (ErrTooLarge) files larger than this many bytes; 0
	// means no limit.
	MaxSize int64
}

// Entry is a file to work on, or an error met while walking (then Path
// names what could not be read, and File is nil). File, Dir and Stat are
// valid only during the call to work: the walk closes them after.
type Entry struct {
	// Path is the file's path for display: the root as given joined with
	// the names below it. It is never opened again.
	Path string
	Err  error
	// File is the regular file, open for reading (O_NONBLOCK, O_NOFOLLOW
	// below a root; O_NOATIME where permitted).
	File *os.File
	// Dir is the directory File was opened in, and Name its name there.
	Dir  *Dir
	Name string
	// Stat is File's fstat.
	Stat unix.Stat_t
}

// ErrDirectory is the Err of a directory root when Recursive is off.
var ErrDirectory = errors.New("is a directory (use -r to walk it)")

// Skip reasons (the Reason of a *SkipError).
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrOtherFS    = errors.New("on another file system")
	ErrTooLarge   = errors.New("larger than the size limit")
	// ErrChanged: readdir listed a regular file or a directory, but the
	// name no longer is one (a symlink, a FIFO, a directory swapped in
	// while the walk ran).
	ErrChanged = errors.New("changed while the tree was walked")
)

// SkipError is the Err of an entry the walk did not hand out as a file,
// for a reason that is not an I/O error.
type SkipError struct {
	Reason error  // ErrNotRegular, ErrOtherFS, ErrTooLarge, ErrChanged
	Detail string // e.g. "now a symlink", "5.0 GiB > 4.0 GiB"
}

func (e *SkipError) Error() string {
	s := "skipped: " + e.Reason.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *SkipError) Unwrap() error { return e.Reason }

// Dir is an open directory of the walk, shared by the entries in it.
type Dir struct {
	f    *os.File
	fd   int
	refs atomic.Int32
}

// Fd is the directory's descriptor, for *at system calls. It stays open
// while an entry in the directory is being worked on.
func (d *Dir) Fd() int { return d.fd }

// WriteFile atomically writes name in the directory (a temporary file
// renamed over it within the directory; a symlink at name is replaced,
// never followed).
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFileAt(d.fd, name, data, perm)
}

// ReadFile reads the regular file name in the directory, at most max
// bytes: not following a symlink, not blocking on a FIFO.
func (d *Dir) ReadFile(name string, max int64) ([]byte, error) {
	f, st, err := openFileAt(d.fd, name, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "open", Path: name, Err: ErrNotRegular}
	}
	if st.Size > max {
		return nil, &os.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w (%d bytes, at most %d)", ErrTooLarge, st.Size, max)}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: name, Err: unwrap(err)}
	}
	if int64(len(b)) > max {
		return nil, &os.PathError{Op: "read", Path: name, Err: ErrTooLarge}
	}
	return b, nil
}

func (d *Dir) hold() { d.refs.Add(1) }

func (d *Dir) release() {
	if d.refs.Add(-1) == 0 {
		d.f.Close()
	}
}

func newDir(fd int, name string) *Dir {
	d := &Dir{f: os.NewFile(uintptr(fd), name), fd: fd}
	d.refs.Store(1)
	return d
}

// openFileAt opens name in dirfd for reading without blocking (FIFOs,
// devices) and without a controlling tty; noFollow refuses a symlink at
// name. O_NOATIME is tried first (it needs the file's owner or
// CAP_FOWNER).
func openFileAt(dirfd int, name string, noFollow bool) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
	if noFollow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return nil, st, &os.PathError{Op: "open", Path: name, Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, st, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), st, nil
}

// Run calls work for every regular file below roots (a root that is a
// regular file, or a symlink to one, is worked on itself), Jobs at a time,
// and emit with each result in walk order (lexical within a directory),
// from a single goroutine. Symlinks and special files below a root are
// skipped silently; a name that readdir listed as a file or directory but
// that is something else when opened is an entry with a *SkipError, as
// are files over MaxSize and files of another file system.
func Run[R any](roots []string, opts Options, work func(Entry) R, emit func(R)) {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	type item struct {
		seq  int
		e    Entry
		open bool // e.Dir/e.Name still to be opened
		dev  uint64
	}
	type done struct {
		seq int
		r   R
	}
	in := make(chan item, 4*jobs)
	out := make(chan done, 4*jobs)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range in {
				e := it.e
				if it.open {
					e = openEntry(e, it.dev, opts)
				}
				r := work(e)
				if e.File != nil {
					e.File.Close()
				}
				if e.Dir != nil {
					e.Dir.release()
				}
				out <- done{it.seq, r}
			}
		}()
	}
	go func() {
		seq := 0
		w := walker{opts: opts}
		w.visit = func(e Entry, open bool, dev uint64) {
			if e.Dir != nil {
				e.Dir.hold()
			}
			in <- item{seq, e, open, dev}
			seq++
		}
		for _, root := range roots {
			w.root(root)
		}
		close(in)
		wg.Wait()
		close(out)
	}()
	pending := make(map[int]R)
	next := 0
	for d := range out {
		pending[d.seq] = d.r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			emit(r)
			next++
		}
	}
}

// openEntry opens the file readdir listed as regular and checks what was
// opened.
func openEntry(e Entry, dev uint64, opts Options) Entry {
	f, st, err := openFileAt(e.Dir.fd, e.Name, true)
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP):
			e.Err = &SkipError{Reason: ErrChanged, Detail: "now a symlink"}
		case errors.Is(err, unix.ENXIO):
			e.Err = &SkipError{Reason: ErrChanged, Detail: "now a socket or device"}
		default:
			e.Err = err
		}
		return e
	}
	if err := checkFile(&st, dev, opts); err != nil {
		if errors.Is(err, ErrNotRegular) {
			err = &SkipError{Reason: ErrChanged, Detail: "now " + typeName(st.Mode)}
		}
		f.Close()
		e.Err = err
		return e
	}
	e.File, e.Stat = f, st
	return e
}

// checkFile is the fstat check of a file the walk hands out; dev is the
// device of the walk's root (0: any).
func checkFile(st *unix.Stat_t, dev uint64, opts Options) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &SkipError{Reason: ErrNotRegular, Detail: typeName(st.Mode)}
	}
	if !opts.CrossFS && dev != 0 && st.Dev != dev {
		return &SkipError{Reason: ErrOtherFS}
	}
	if opts.MaxSize > 0 && st.Size > opts.MaxSize {
		return &SkipError{Reason: ErrTooLarge, Detail: fmt.Sprintf("%s > %s", FormatSize(st.Size), FormatSize(opts.MaxSize))}
	}
	return nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "of unknown type"
}

type walker struct {
	opts  Options
	visit func(e Entry, open bool, dev uint64)
}

// root opens a root: its directory by path, and the root in it following
// a final symlink (command-line symlinks are followed, as find -H).
func (w *walker) root(root string) {
	clean := filepath.Clean(root)
	parent, base := filepath.Dir(clean), filepath.Base(clean)
	if clean == "/" {
		parent, base = "/", "."
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		w.visit(Entry{Path: root, Err: &os.PathError{Op: "open", Path: root, Err: err}}, false, 0)
		return
	}
	pd := newDir(pfd, parent)
	defer pd.release()
	// Look before opening: opening a device node can have effects.
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, 0); err != nil {
		w.visit(Entry{Path: root, Err: &os.PathError{Op: "stat", Path: root, Err: err}}, false, 0)
		return
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if !w.opts.Recursive {
			w.visit(Entry{Path: root, Err: ErrDirectory}, false, 0)
			return
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			w.visit(Entry{Path: root, Err: &os.PathError{Op: "open", Path: root, Err: err}}, false, 0)
			return
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			w.visit(Entry{Path: root, Err: &os.PathError{Op: "fstat", Path: root, Err: err}}, false, 0)
			return
		}
		d := newDir(fd, root)
		w.dir(d, root, st.Dev)
		d.release()
	case unix.S_IFREG:
		f, st, err := openFileAt(pfd, base, false)
		if err != nil {
			w.visit(Entry{Path: root, Err: &os.PathError{Op: "open", Path: root, Err: unwrap(err)}}, false, 0)
			return
		}
		if err := checkFile(&st, 0, w.opts); err != nil {
			f.Close()
			if errors.Is(err, ErrNotRegular) {
				err = &SkipError{Reason: ErrChanged, Detail: "now " + typeName(st.Mode)}
			}
			w.visit(Entry{Path: root, Err: err}, false, 0)
			return
		}
		w.visit(Entry{Path: root, File: f, Dir: pd, Name: base, Stat: st}, false, 0)
	default:
		w.visit(Entry{Path: root, Err: ErrNotRegular}, false, 0)
	}
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// dir walks the open directory d (path for display) of device dev.
func (w *walker) dir(d *Dir, path string, dev uint64) {
	ents, err := d.f.ReadDir(-1)
	if err != nil {
		w.visit(Entry{Path: path, Err: err}, false, 0)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		p := filepath.Join(path, e.Name())
		switch t := e.Type(); {
		case t.IsRegular():
			w.visit(Entry{Path: p, Dir: d, Name: e.Name()}, true, dev)
		case t.IsDir():
			w.subdir(d, e.Name(), p, dev)
		}
		// symlinks, devices, FIFOs and sockets are not labelled
	}
}

func (w *walker) subdir(parent *Dir, name, path string, dev uint64) {
	fd, err := unix.Openat(parent.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			w.visit(Entry{Path: path, Err: &SkipError{Reason: ErrChanged, Detail: "no longer a directory"}}, false, 0)
		} else {
			w.visit(Entry{Path: path, Err: &os.PathError{Op: "open", Path: path, Err: err}}, false, 0)
		}
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		w.visit(Entry{Path: path, Err: &os.PathError{Op: "fstat", Path: path, Err: err}}, false, 0)
		return
	}
	if !w.opts.CrossFS && st.Dev != dev {
		unix.Close(fd)
		return // a mount point: another file system
	}
	d := newDir(fd, path)
	w.dir(d, path, dev)
	d.release()
}

// FormatSize formats n bytes for people: 4.0 GiB, 512 KiB, 17 B.
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseSize parses a size as the --max-size flags take it: a number of
// bytes with an optional K, M, G or T suffix (powers of 1024, an optional
// "iB" or "B" after it); 0 means no limit.
func ParseSize(s string) (int64, error) {
	num := s
	mult := int64(1)
	for _, suf := range []string{"iB", "B"} {
		if len(num) > len(suf) && num[len(num)-len(suf):] == suf {
			num = num[:len(num)-len(suf)]
			break
		}
	}
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			num = num[:n-1]
		}
	}
	var v int64
	if num == "" {
		return 0, fmt.Errorf("size %q: want a number of bytes, e.g. 4G", s)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("size %q: want a number of bytes, e.g. 4G", s)
		}
		if v > (1<<62)/10 {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		v = v*10 + int64(c-'0')
	}
	if v > (1<<62)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return v * mult, nil
}
