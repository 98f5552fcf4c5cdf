// SPDX-License-Identifier: Apache-2.0

// Package clidoctest holds the two drift tests every binary runs over its
// command-line reference (TestReference and TestHelpManAndDocsAgree in
// each cmd/* package): the checked-in files are what the flags generate
// now, and the flags a user reads in -h, the man page and the Markdown
// page are the same.
package clidoctest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/intactsec/intact/internal/clidoc"
)

// Reference fails t for each generated file under root that differs from
// a fresh generation of p; with update it rewrites them instead (the
// binaries' go:generate runs TestReference with -update).
func Reference(t testing.TB, root string, p *clidoc.Program, update bool) {
	t.Helper()
	if update {
		if err := clidoc.Generate(root, p); err != nil {
			t.Fatal(err)
		}
		return
	}
	stale, err := clidoc.Check(root, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stale {
		t.Errorf("stale: %s", s)
	}
	if len(stale) > 0 {
		t.Errorf("the reference is generated from %s's flags: run %s and commit the result", p.Name, clidoc.Regenerate)
	}
}

// HelpFunc runs one command line with -h (c.Name "" for a program
// without commands) and returns the flag names its output lists
// (clidoc.HelpFlags). It reports its own failures on t; ok false leaves
// the command out of the comparison.
type HelpFunc func(t testing.TB, c clidoc.Command) (flags []string, ok bool)

// FlagsAgree reads the flags back from what a user sees — each command's
// -h output (help), p's man page and Markdown page under root — and fails
// where any two disagree. A program without commands is compared as one
// command line: its man page's flags before the first subsection, its
// page's "Flags of `PROG`" table.
func FlagsAgree(t testing.TB, root string, p *clidoc.Program, help HelpFunc) {
	t.Helper()
	man, err := os.ReadFile(filepath.Join(root, clidoc.ManPath(p)))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(root, p.Page))
	if err != nil {
		t.Fatal(err)
	}
	manFlags, mdFlags := clidoc.ManFlags(string(man)), clidoc.MarkdownFlags(string(page))
	cmds := p.Commands
	if len(cmds) == 0 {
		cmds = []clidoc.Command{{Flags: p.Flags}}
	}
	for _, c := range cmds {
		full, manKey := p.Name, ""
		if c.Name != "" {
			full = p.Name + " " + c.Name
			manKey = full
		}
		got, ok := help(t, c)
		if !ok {
			continue
		}
		inMan, found := manFlags[manKey]
		if !found && c.Name != "" {
			t.Errorf("%s: no section in %s (run %s)", full, clidoc.ManPath(p), clidoc.Regenerate)
		}
		if !slices.Equal(got, inMan) {
			t.Errorf("%s: -h lists %v, %s %v (run %s)", full, got, clidoc.ManPath(p), inMan, clidoc.Regenerate)
		}
		if inMD := mdFlags[full]; !slices.Equal(got, inMD) {
			t.Errorf("%s: -h lists %v, %s %v (run %s)", full, got, p.Page, inMD, clidoc.Regenerate)
		}
	}
}
