// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/quote"
	"github.com/intactsec/intact/walk"
)

// flagSet is a command's flags; flags may come before, between or after
// the operands, and each may be written -f or --f.
type flagSet struct {
	*flag.FlagSet
	cmd   string
	usage string
	out   io.Writer
	e     *env
}

func newFlags(e *env, cmd, usage string) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, cmd: cmd, usage: usage, out: e.stdout, e: e}
}

// parse parses args and returns the operands.
func (f *flagSet) parse(args []string) ([]string, error) {
	if f.e.describe != nil {
		f.e.describe(f) // the reference is generated from these flags (docs_test.go)
		return nil, errDescribed
	}
	var operands []string
	for {
		if err := f.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage()
				return nil, errHelp
			}
			return nil, usageErrorf(f.cmd, "%v", err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		// Parse stops at the first operand, or after a "--" it consumed.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

func (f *flagSet) printUsage() {
	fmt.Fprintf(f.out, "%s\nFlags:\n", strings.TrimSpace(f.usage))
	f.SetOutput(f.out)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// treeFlags are the flags of every command that works on files.
type treeFlags struct {
	recursive bool
	allFS     bool
	jobs      int
	xattrUser bool
	maxSize   int64
}

func (t *treeFlags) register(f *flagSet) {
	f.BoolVar(&t.recursive, "r", false, "walk directories (regular files only, never following symlinks)")
	f.BoolVar(&t.recursive, "recursive", false, "same as -r")
	f.BoolVar(&t.allFS, "all-fs", false, "with -r, descend into other file systems mounted below PATH")
	f.IntVar(&t.jobs, "j", 0, "number of files to work on at once (default: one per CPU)")
	f.BoolVar(&t.xattrUser, "xattr-user", false, "use user.ima/user.evm instead of security.ima/security.evm")
	t.maxSize = walk.DefaultMaxSize
	f.Func("max-size", "skip files larger than `SIZE` (bytes, or with K, M, G, T; 0: no limit; default 4G)", func(s string) error {
		n, err := walk.ParseSize(s)
		if err != nil {
			return err
		}
		t.maxSize = n
		return nil
	})
}

func (t *treeFlags) options() walk.Options {
	jobs := t.jobs
	if jobs == 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	return walk.Options{Recursive: t.recursive, CrossFS: t.allFS, Jobs: jobs, MaxSize: t.maxSize}
}

// checkPaths refuses operands that do not exist before any work starts, so
// that a typo is an operational error (exit 2), not a verdict. It is the
// one symlink rule of hash, sign, verify and hmac (as find -H): an operand
// that is a symlink is resolved here, once, and replaced in paths by the
// file it names, which is what the command works on and reports; below a
// directory walked with -r symlinks are never followed.
func checkPaths(cmd string, paths []string, t *treeFlags) error {
	if len(paths) == 0 {
		return usageErrorf(cmd, "no PATH given")
	}
	if t.jobs < 0 {
		return usageErrorf(cmd, "-j must be at least 1 (0: one per CPU)")
	}
	for i, p := range paths {
		if li, err := os.Lstat(p); err == nil && li.Mode()&os.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, unwrapPathError(err))
			}
			paths[i] = target
			p = target
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, unwrapPathError(err))
		}
		if fi.IsDir() && !t.recursive {
			return usageErrorf(cmd, "%s is a directory (use -r to walk it)", p)
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// quoteName is a file name as text output shows it: as it is, or as
// bash's $'...' when it holds anything but plain characters
// (internal/quote; docs/cli.md "Output rules").
func quoteName(s string) string { return quote.Name(s) }
