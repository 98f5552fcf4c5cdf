// SPDX-License-Identifier: Apache-2.0

// Package walk visits the regular files of trees in parallel: one file
// system unless told otherwise, never following symlinks, with results
// handed back in walk order.
package walk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
)

// Options configure Run.
type Options struct {
	// Recursive descends into directories given as roots; without it a
	// directory root is reported as an error entry.
	Recursive bool
	// CrossFS descends into other file systems mounted below a root.
	CrossFS bool
	// Jobs is the number of files worked on at once; 0 means one per CPU.
	Jobs int
}

// Entry is a file to work on, or an error met while walking (then Path
// names what could not be read).
type Entry struct {
	Path string
	Err  error
}

// ErrDirectory is the Err of a directory root when Recursive is off.
var ErrDirectory = errors.New("is a directory (use -r to walk it)")

// Run calls work for every regular file below roots (a root that is a
// regular file, or a symlink to one, is worked on itself), Jobs at a time,
// and emit with each result in walk order (lexical within a directory),
// from a single goroutine. Symlinks and special files below a root are
// skipped.
func Run[R any](roots []string, opts Options, work func(Entry) R, emit func(R)) {
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	type item struct {
		seq int
		e   Entry
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
				out <- done{it.seq, work(it.e)}
			}
		}()
	}
	go func() {
		seq := 0
		visit := func(e Entry) {
			in <- item{seq, e}
			seq++
		}
		for _, root := range roots {
			walkRoot(root, opts, visit)
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

func walkRoot(root string, opts Options, visit func(Entry)) {
	fi, err := os.Stat(root) // command-line symlinks are followed, as find -H
	if err != nil {
		visit(Entry{Path: root, Err: err})
		return
	}
	switch {
	case fi.Mode().IsRegular():
		visit(Entry{Path: root})
	case fi.IsDir() && opts.Recursive:
		walkDir(root, devOf(fi), opts, visit)
	case fi.IsDir():
		visit(Entry{Path: root, Err: ErrDirectory})
	default:
		visit(Entry{Path: root, Err: errors.New("not a regular file")})
	}
}

func walkDir(dir string, dev uint64, opts Options, visit func(Entry)) {
	f, err := os.Open(dir)
	if err != nil {
		visit(Entry{Path: dir, Err: err})
		return
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		visit(Entry{Path: dir, Err: err})
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch t := e.Type(); {
		case t.IsRegular():
			visit(Entry{Path: p})
		case t.IsDir():
			if !opts.CrossFS {
				fi, err := os.Lstat(p)
				if err != nil {
					visit(Entry{Path: p, Err: err})
					continue
				}
				if devOf(fi) != dev {
					continue // a mount point: another file system
				}
			}
			walkDir(p, dev, opts, visit)
		}
		// symlinks, devices, FIFOs and sockets are not labelled
	}
}

func devOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Dev
	}
	return 0
}
