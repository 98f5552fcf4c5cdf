// SPDX-License-Identifier: Apache-2.0

package clidoc

import (
	"fmt"
	"sort"
	"strings"
)

// header is the first line of every generated file.
func header(comment, prog string) string {
	return fmt.Sprintf("%s Generated from %s's flags by %s: do not edit.\n", comment, prog, Regenerate)
}

// Markdown returns the content of each region of the program's page, by
// region key ("intact sign").
func Markdown(p *Program) map[string]string {
	out := map[string]string{}
	if p.Help != "" || len(p.Flags) > 0 {
		var b strings.Builder
		writeHelpBlock(&b, p.Help)
		if len(p.Flags) > 0 {
			what := "Flags"
			if len(p.Commands) > 0 {
				what = "Flags of every command"
			}
			fmt.Fprintf(&b, "%s of `%s`:\n\n", what, p.Name)
			writeTable(&b, p.Flags)
		}
		out[p.Name] = b.String()
	}
	names, cmds := p.sections()
	for _, s := range names {
		var b strings.Builder
		lastHelp := ""
		for _, c := range cmds[s] {
			if h := trimHelp(c.Help); h != "" && h != lastHelp {
				writeHelpBlock(&b, c.Help)
				lastHelp = h
			} else if h == "" && c.Summary != "" {
				fmt.Fprintf(&b, "`%s`: %s.\n\n", fullName(p.Name, c.Name), c.Summary)
			}
			if len(c.Flags) == 0 {
				fmt.Fprintf(&b, "`%s` takes no flags.\n\n", fullName(p.Name, c.Name))
				continue
			}
			fmt.Fprintf(&b, "Flags of `%s`:\n\n", fullName(p.Name, c.Name))
			writeTable(&b, c.Flags)
		}
		out[fullName(p.Name, s)] = b.String()
	}
	return out
}

func writeHelpBlock(b *strings.Builder, help string) {
	if h := trimHelp(help); h != "" {
		fmt.Fprintf(b, "```text\n%s\n```\n\n", h)
	}
}

func writeTable(b *strings.Builder, flags []Flag) {
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	for _, f := range flags {
		def := ""
		if f.Default != "" {
			def = "`" + mdCell(f.Default) + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", mdCell(f.Spelling()), def, mdCell(f.Usage))
	}
	b.WriteString("\n")
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// Man returns the program's man page (roff, man macros).
func Man(p *Program) string {
	var b strings.Builder
	b.WriteString(`.\" ` + strings.TrimSuffix(header("", p.Name)[1:], "\n") + "\n")
	fmt.Fprintf(&b, ".TH %s %s \"\" \"intact\" \"intact manual\"\n", strings.ToUpper(p.Name), p.ManSection)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", p.Name, roff(p.Description))
	b.WriteString(".SH DESCRIPTION\n")
	manPre(&b, p.Help)
	if len(p.Flags) > 0 {
		if len(p.Commands) > 0 {
			b.WriteString(".SH \"FLAGS OF EVERY COMMAND\"\n")
		} else {
			b.WriteString(".SH FLAGS\n")
		}
		manFlags(&b, p.Flags)
	}
	if len(p.Commands) > 0 {
		b.WriteString(".SH COMMANDS\n")
	}
	names, cmds := p.sections()
	for _, s := range names {
		lastHelp := ""
		for _, c := range cmds[s] {
			fmt.Fprintf(&b, ".SS \"%s\"\n", roff(fullName(p.Name, c.Name)))
			if c.Summary != "" {
				fmt.Fprintf(&b, ".PP\n%s.\n", roffLine(c.Summary))
			}
			if h := trimHelp(c.Help); h != "" && h != lastHelp {
				manPre(&b, c.Help)
				lastHelp = h
			} else if h != "" {
				fmt.Fprintf(&b, ".PP\nSee \\fB%s\\fR above.\n", roff(fullName(p.Name, cmds[s][0].Name)))
			}
			manFlags(&b, c.Flags)
		}
	}
	if p.Env != "" {
		b.WriteString(".SH ENVIRONMENT\n")
		manPre(&b, p.Env)
	}
	if p.Files != "" {
		b.WriteString(".SH FILES\n")
		manPre(&b, p.Files)
	}
	if len(p.SeeAlso) > 0 {
		b.WriteString(".SH \"SEE ALSO\"\n")
		var refs []string
		for _, s := range p.SeeAlso {
			if i := strings.IndexByte(s, '('); i > 0 {
				refs = append(refs, `\fB`+roff(s[:i])+`\fR`+roff(s[i:]))
			} else {
				refs = append(refs, roff(s))
			}
		}
		b.WriteString(roffLine(strings.Join(refs, ", ")) + "\n")
	}
	return b.String()
}

func manPre(b *strings.Builder, text string) {
	h := trimHelp(text)
	if h == "" {
		return
	}
	b.WriteString(".PP\n.nf\n")
	for _, l := range strings.Split(h, "\n") {
		b.WriteString(roffLine(roff(l)) + "\n")
	}
	b.WriteString(".fi\n")
}

func manFlags(b *strings.Builder, flags []Flag) {
	for _, f := range flags {
		b.WriteString(".TP\n")
		if f.Arg != "" {
			fmt.Fprintf(b, ".BI \"%s \" %s\n", roff(f.Dashed()), roff(f.Arg))
		} else {
			fmt.Fprintf(b, ".B \"%s\"\n", roff(f.Dashed()))
		}
		u := roff(f.Usage)
		if f.Default != "" {
			u += " (default: " + roff(f.Default) + ")"
		}
		b.WriteString(roffLine(u) + "\n")
	}
}

// roff escapes text for roff: backslashes and hyphens.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	s = strings.ReplaceAll(s, `"`, `\(dq`)
	var b strings.Builder
	for _, r := range s {
		if r > 127 {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffLine protects a line that would start with a control character.
func roffLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// node is a command word sequence seen during completion: its next words
// and, for a complete command, its flags.
type completion struct {
	prefixes []string            // every command-word prefix: "", "log", "log show"
	next     map[string][]string // prefix -> the words that may follow
	flags    map[string][]Flag   // prefix -> its flags (with the program's)
	valued   []string            // flags that take a value
}

func completions(p *Program) *completion {
	c := &completion{next: map[string][]string{}, flags: map[string][]Flag{}}
	seenPrefix := map[string]bool{"": true}
	c.prefixes = []string{""}
	c.flags[""] = p.Flags
	for _, cmd := range p.Commands {
		words := strings.Fields(cmd.Name)
		for i := range words {
			parent := strings.Join(words[:i], " ")
			cur := strings.Join(words[:i+1], " ")
			if !seenPrefix[cur] {
				seenPrefix[cur] = true
				c.prefixes = append(c.prefixes, cur)
				c.next[parent] = append(c.next[parent], words[i])
				c.flags[cur] = p.Flags
			}
		}
		c.flags[cmd.Name] = append(append([]Flag(nil), p.Flags...), cmd.Flags...)
	}
	valued := map[string]bool{}
	for _, fs := range c.flags {
		for _, f := range fs {
			if f.Arg != "" {
				valued[f.Dashed()] = true
			}
		}
	}
	for v := range valued {
		c.valued = append(c.valued, v)
	}
	sort.Strings(c.valued)
	return c
}

func flagWords(fs []Flag) string {
	var w []string
	for _, f := range fs {
		w = append(w, f.Dashed())
	}
	sort.Strings(w)
	return strings.Join(w, " ")
}

func shellFunc(prog string) string {
	return "_" + strings.ReplaceAll(prog, "-", "_")
}

// shell is what the bash and the zsh completion functions say
// differently; what they do is the same (writeCompletion): walk the
// command words before the cursor, complete a file name after a flag that
// takes a value, else the command's flags, its next words or a file.
type shell struct {
	start    string              // the locals and the loop over the words, up to w=
	pattern  func(string) string // a case pattern
	prev     string              // the word before the cursor
	files    string              // complete a file name
	setNext  func([]string) string
	setFlags func(string) string
	atFlag   string // the test: the cursor's word is a flag
	hasNext  string // the test: the command has next words
	flags    string // complete the flags set by setFlags
	next     string // complete the words set by setNext
}

var bash = shell{
	start: "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n" +
		"    local cmd=\"\" w i words=\"\" flags=\"\"\n" +
		"    for ((i = 1; i < COMP_CWORD; i++)); do\n        w=${COMP_WORDS[i]}\n",
	pattern:  func(s string) string { return s + ")" },
	prev:     "$prev",
	files:    "COMPREPLY=($(compgen -f -- \"$cur\"))",
	setNext:  func(n []string) string { return "words=" + shQuote(strings.Join(n, " ")) },
	setFlags: func(f string) string { return "flags=" + shQuote(f) },
	atFlag:   "[[ $cur == -* ]]",
	hasNext:  "[[ -n $words ]]",
	flags:    "COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))",
	next:     "COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))",
}

var zsh = shell{
	start: "    local cmd=\"\" w i\n    local -a next opts\n" +
		"    for ((i = 2; i < CURRENT; i++)); do\n        w=${words[i]}\n",
	pattern:  func(s string) string { return "(" + s + ")" },
	prev:     "${words[CURRENT-1]}",
	files:    "_files",
	setNext:  func(n []string) string { return "next=(" + strings.Join(n, " ") + ")" },
	setFlags: func(f string) string { return "opts=(" + f + ")" },
	atFlag:   "[[ $PREFIX == -* ]]",
	hasNext:  "(( ${#next} ))",
	flags:    "compadd -- $opts",
	next:     "compadd -- $next",
}

// writeCompletion writes the completion function fn of the program in
// the shell's words.
func writeCompletion(b *strings.Builder, sh shell, fn string, c *completion) {
	fmt.Fprintf(b, "%s() {\n", fn)
	b.WriteString(sh.start)
	b.WriteString("        case \"$cmd${cmd:+ }$w\" in\n")
	if len(c.prefixes) > 1 {
		var alts []string
		for _, pre := range c.prefixes[1:] {
			alts = append(alts, shQuote(pre))
		}
		fmt.Fprintf(b, "        %s cmd=\"$cmd${cmd:+ }$w\" ;;\n", sh.pattern(strings.Join(alts, "|")))
	}
	b.WriteString("        esac\n    done\n")
	if len(c.valued) > 0 {
		fmt.Fprintf(b, "    case %s in\n    %s\n        %s\n        return\n        ;;\n    esac\n",
			sh.prev, sh.pattern(strings.Join(c.valued, "|")), sh.files)
	}
	b.WriteString("    case $cmd in\n")
	for _, pre := range c.prefixes {
		fmt.Fprintf(b, "    %s\n", sh.pattern(shQuote(pre)))
		if n := c.next[pre]; len(n) > 0 {
			fmt.Fprintf(b, "        %s\n", sh.setNext(n))
		}
		fmt.Fprintf(b, "        %s\n        ;;\n", sh.setFlags(flagWords(c.flags[pre])))
	}
	b.WriteString("    esac\n")
	fmt.Fprintf(b, "    if %s; then\n        %s\n    elif %s; then\n        %s\n    else\n        %s\n    fi\n}\n",
		sh.atFlag, sh.flags, sh.hasNext, sh.next, sh.files)
}

// Bash returns a bash completion script for the program.
func Bash(p *Program) string {
	fn := shellFunc(p.Name)
	var b strings.Builder
	b.WriteString(header("#", p.Name))
	writeCompletion(&b, bash, fn, completions(p))
	fmt.Fprintf(&b, "complete -o filenames -F %s %s\n", fn, p.Name)
	return b.String()
}

// Zsh returns a zsh completion function (file _PROG) for the program.
func Zsh(p *Program) string {
	fn := shellFunc(p.Name)
	var b strings.Builder
	fmt.Fprintf(&b, "#compdef %s\n", p.Name)
	b.WriteString(header("#", p.Name))
	writeCompletion(&b, zsh, fn, completions(p))
	fmt.Fprintf(&b, "%s \"$@\"\n", fn)
	return b.String()
}

func shQuote(s string) string {
	if s == "" {
		return `""`
	}
	if strings.ContainsAny(s, " '\"$\\|") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
