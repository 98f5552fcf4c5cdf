// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/clidoc"
	"github.com/intactsec/intact/internal/clidoc/clidoctest"
)

// The command-line reference (docs/cli.md's command sections, intact(1),
// bash and zsh completion) is generated from the flag sets the commands
// parse with. Regenerate with "go generate ./..." (scripts/gendocs.sh).

var update = flag.Bool("update", false, "rewrite the generated reference instead of checking it")

const repoRoot = "../.."

// docSubcommands are the words after the commands that dispatch on one;
// TestReferenceCoversSubcommands checks the help texts name no other.
func docSubcommands() map[string][]string {
	var rt []string
	for name := range rtpolicyCommands {
		rt = append(rt, name)
	}
	sort.Strings(rt)
	return map[string][]string{
		"evmkey":   {"create", "export", "reseal"},
		"tpm":      {"pcrs", "info"},
		"log":      {"show", "convert", "replay"},
		"eventlog": {"replay"},
		"manifest": {"create", "check", "update"},
		"policy":   append([]string{"check"}, rt...),
	}
}

// describe runs a command line in describe mode and returns the flag set
// it would parse with (nil for a command without flags).
func describe(t testing.TB, words []string) *flagSet {
	var got *flagSet
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		getenv: func(string) string { return "" }, describe: func(f *flagSet) { got = f }}
	for _, c := range commands {
		if c.name == words[0] {
			err := c.run(e, words[1:])
			if got == nil && err == errDescribed {
				t.Fatalf("intact %s: described without flags", strings.Join(words, " "))
			}
			return got
		}
	}
	t.Fatalf("no command %q", words[0])
	return nil
}

func referenceProgram(t testing.TB) *clidoc.Program {
	p := &clidoc.Program{
		Name:        "intact",
		ManSection:  "1",
		Description: "label files with IMA/EVM integrity labels and verify them",
		Help:        fmt.Sprintf(usage, commandList()),
		Page:        "docs/cli.md",
		SeeAlso:     []string{"intactd(8)", "intact-verifier(8)", "evmctl(1)", "setfattr(1)"},
	}
	subs := docSubcommands()
	for _, c := range commands {
		lines := [][]string{{c.name}}
		if s, ok := subs[c.name]; ok {
			lines = nil
			for _, w := range s {
				lines = append(lines, []string{c.name, w})
			}
		}
		for _, words := range lines {
			cmd := clidoc.Command{Name: strings.Join(words, " "), Section: c.name}
			if len(words) == 1 {
				cmd.Summary = c.summary
			}
			if f := describe(t, words); f != nil {
				cmd.Help = f.usage
				cmd.Flags = clidoc.FlagsOf(f.FlagSet)
			}
			p.Commands = append(p.Commands, cmd)
		}
	}
	return p
}

// TestReference fails when the checked-in reference is not what the
// flags generate now; with -update it rewrites it.
func TestReference(t *testing.T) {
	clidoctest.Reference(t, repoRoot, referenceProgram(t), *update)
}

// TestHelpManAndDocsAgree reads the flags back from what a user sees —
// each command's -h output, intact(1) and docs/cli.md — and fails where
// any two disagree.
func TestHelpManAndDocsAgree(t *testing.T) {
	clidoctest.FlagsAgree(t, repoRoot, referenceProgram(t), func(t testing.TB, c clidoc.Command) ([]string, bool) {
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		if code := run(e, append(strings.Fields(c.Name), "-h")); code != 0 && len(c.Flags) > 0 {
			t.Errorf("intact %s -h: exit %d: %s", c.Name, code, stderr.String())
			return nil, false
		}
		if len(c.Flags) == 0 {
			return nil, true
		}
		return clidoc.HelpFlags(stdout.String()), true
	})
}

var synopsisLine = regexp.MustCompile(`^(?:\s+|Usage:\s*)intact ([a-z][a-z-]*) ([a-z][a-z-]*)\b`)

// TestReferenceCoversSubcommands fails when a help text shows a
// subcommand that docSubcommands (and so the reference) leaves out.
func TestReferenceCoversSubcommands(t *testing.T) {
	subs := docSubcommands()
	for _, c := range referenceProgram(t).Commands {
		for _, l := range strings.Split(c.Help, "\n") {
			m := synopsisLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			known := slices.Contains(subs[m[1]], m[2])
			if !known {
				t.Errorf("%q (help of intact %s) shows a subcommand the reference leaves out: add it to docSubcommands", strings.TrimSpace(l), c.Name)
			}
		}
	}
}

// intact --version and intact version print the program's name and
// build (the VCS revision of a real build is checked by
// scripts.TestInstallScript).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var stdout bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: io.Discard, getenv: func(string) string { return "" }}
		if code := run(e, args); code != 0 || !strings.HasPrefix(stdout.String(), "intact ") {
			t.Errorf("intact %v: exit %d, %q", args, code, stdout.String())
		}
	}
}
