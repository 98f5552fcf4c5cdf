// SPDX-License-Identifier: Apache-2.0

// Package clidoc renders a program's command-line reference — the
// Markdown sections of docs/, a man page and bash and zsh completion —
// from the same flag.FlagSets the program parses its arguments with, so
// that the help, the documentation and the completion cannot drift apart.
//
// A program describes itself as a Program (each binary builds one from
// its flag sets in a test); Generate writes every file, and Check
// reports the files that differ from a fresh generation. The Markdown
// goes into marked regions of hand-written pages:
//
//	<!-- BEGIN GENERATED: intact sign ... -->
//	...
//	<!-- END GENERATED: intact sign -->
//
// Everything outside the regions is left as it is.
package clidoc

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// Regenerate is the command that rewrites every generated file; failure
// messages name it.
const Regenerate = "scripts/gendocs.sh (or go generate ./...)"

// Flag is one flag as its flag set defines it.
type Flag struct {
	Name    string // without dashes
	Arg     string // the value's placeholder ("FILE"); "" for a boolean flag
	Usage   string
	Default string // "" when the default is the zero value
}

// Spelling is the flag as written on a command line: -r, --key FILE.
func (f Flag) Spelling() string {
	s := "--" + f.Name
	if len(f.Name) == 1 {
		s = "-" + f.Name
	}
	if f.Arg != "" {
		s += " " + f.Arg
	}
	return s
}

// Dashed is the flag's name with its dashes: -r, --key.
func (f Flag) Dashed() string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// FlagsOf lists the flags of fs, sorted by name, as --help prints them
// (flag.PrintDefaults): the placeholder from the usage's back-quoted word
// or the value's type, the default unless it is the zero value.
func FlagsOf(fs *flag.FlagSet) []Flag {
	var out []Flag
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		fl := Flag{Name: f.Name, Arg: arg, Usage: usage}
		if !isZero(f) {
			fl.Default = f.DefValue
		}
		out = append(out, fl)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// isZero mirrors flag.PrintDefaults: is the default the value's zero?
func isZero(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// Command is one command line of a program with its own flags.
type Command struct {
	// Name is the words after the program's name: "sign", "log show";
	// "" for a program without commands.
	Name string
	// Section groups commands that share a page section and a help text
	// ("log" for "log show" and "log convert"); "" means Name.
	Section string
	// Summary is one line.
	Summary string
	// Help is the text -h prints before the flags.
	Help  string
	Flags []Flag
}

func (c *Command) section() string {
	if c.Section != "" {
		return c.Section
	}
	return c.Name
}

// Program is a binary's whole command line.
type Program struct {
	Name        string // "intact"
	ManSection  string // "1" or "8"
	Description string // one line for the man page's NAME
	// Help is the program's own -h text.
	Help string
	// Flags are flags every command takes (the verifier client's), or
	// all of a program's flags when it has no commands.
	Flags    []Flag
	Commands []Command
	// Page is the Markdown file (relative to the repository) whose
	// regions hold the command sections.
	Page string
	// Env and Files are extra man page sections, preformatted text.
	Env, Files string
	SeeAlso    []string // "intactd(8)"
}

// sections returns the commands grouped by section, in order of first
// appearance.
func (p *Program) sections() (names []string, cmds map[string][]*Command) {
	cmds = map[string][]*Command{}
	for i := range p.Commands {
		c := &p.Commands[i]
		s := c.section()
		if _, ok := cmds[s]; !ok {
			names = append(names, s)
		}
		cmds[s] = append(cmds[s], c)
	}
	return names, cmds
}

func fullName(prog, cmd string) string {
	if cmd == "" {
		return prog
	}
	return prog + " " + cmd
}

// trimHelp drops the leading and trailing blank lines of a help text and
// expands tabs.
func trimHelp(s string) string {
	s = strings.ReplaceAll(s, "\t", "    ")
	lines := strings.Split(s, "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n")
}

// Validate refuses a description the renderers cannot render faithfully.
func (p *Program) Validate() error {
	seen := map[string]bool{}
	for _, c := range p.Commands {
		if seen[c.Name] {
			return fmt.Errorf("%s: command %q twice", p.Name, c.Name)
		}
		seen[c.Name] = true
		for _, f := range c.Flags {
			if strings.ContainsAny(f.Name, " \n") {
				return fmt.Errorf("%s %s: bad flag name %q", p.Name, c.Name, f.Name)
			}
		}
	}
	return nil
}
