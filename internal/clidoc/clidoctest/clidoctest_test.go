// SPDX-License-Identifier: Apache-2.0

package clidoctest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/clidoc"
)

// recorder is a testing.TB that keeps the failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func program() *clidoc.Program {
	return &clidoc.Program{
		Name: "prog", ManSection: "1", Description: "does things", Page: "docs/prog.md",
		Commands: []clidoc.Command{
			{Name: "sign", Flags: []clidoc.Flag{{Name: "key", Arg: "FILE"}, {Name: "r"}}},
			{Name: "log show", Section: "log", Flags: []clidoc.Flag{{Name: "json"}}},
		},
	}
}

// The two drift tests pass on a fresh generation and fail on each kind of
// drift: a stale file, -h listing a flag the docs do not.
func TestDriftIsCaught(t *testing.T) {
	root := t.TempDir()
	p := program()
	Reference(t, root, p, true)
	r := &recorder{TB: t}
	Reference(r, root, p, false)
	if len(r.errs) != 0 {
		t.Fatalf("fresh generation: %v", r.errs)
	}
	helpOf := func(extra string) HelpFunc {
		return func(_ testing.TB, c clidoc.Command) ([]string, bool) {
			var names []string
			for _, f := range c.Flags {
				names = append(names, f.Dashed())
			}
			if c.Name == "sign" && extra != "" {
				names = append(names, extra)
			}
			return names, true
		}
	}
	FlagsAgree(r, root, p, helpOf(""))
	if len(r.errs) != 0 {
		t.Fatalf("agreeing flags: %v", r.errs)
	}
	FlagsAgree(r, root, p, helpOf("--zzz"))
	if len(r.errs) != 2 || !strings.Contains(r.errs[0], "prog sign: -h lists") || !strings.Contains(r.errs[1], "docs/prog.md") {
		t.Errorf("a flag only -h lists: %q", r.errs)
	}

	r.errs = nil
	man := filepath.Join(root, clidoc.ManPath(p))
	if err := os.WriteFile(man, []byte(".TH PROG 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Reference(r, root, p, false)
	if len(r.errs) != 2 || !strings.HasPrefix(r.errs[0], "stale: "+clidoc.ManPath(p)) {
		t.Errorf("a stale man page: %q", r.errs)
	}
	r.errs = nil
	FlagsAgree(r, root, p, helpOf(""))
	if len(r.errs) != 4 || !strings.Contains(r.errs[0], "no section in") {
		t.Errorf("a man page without the commands: %q", r.errs)
	}
}

// A program without commands is compared as one command line.
func TestProgramWithoutCommands(t *testing.T) {
	root := t.TempDir()
	p := &clidoc.Program{Name: "d", ManSection: "8", Description: "a daemon", Page: "docs/d.md",
		Flags: []clidoc.Flag{{Name: "config", Arg: "FILE"}, {Name: "v"}}}
	Reference(t, root, p, true)
	for _, tc := range []struct {
		help []string
		errs int
	}{
		{[]string{"--config", "-v"}, 0},
		{[]string{"--config"}, 2},
	} {
		r := &recorder{TB: t}
		FlagsAgree(r, root, p, func(_ testing.TB, c clidoc.Command) ([]string, bool) {
			if c.Name != "" {
				t.Errorf("command %q", c.Name)
			}
			return tc.help, true
		})
		if len(r.errs) != tc.errs {
			t.Errorf("-h lists %v: %q", tc.help, r.errs)
		}
	}
}
