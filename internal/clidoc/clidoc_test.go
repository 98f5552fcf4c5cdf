// SPDX-License-Identifier: Apache-2.0

package clidoc

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/testenv"
)

func testProgram() *Program {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("key", "", "private key `FILE`")
	fs.Bool("r", false, "walk directories")
	fs.Duration("interval", 2*time.Second, "how often; a | pipe and a \\ backslash")
	fs.Int("j", 0, "jobs")
	sub := flag.NewFlagSet("y", flag.ContinueOnError)
	sub.Bool("json", false, "JSON — output")
	return &Program{
		Name: "prog", ManSection: "1", Description: "does things", Page: "docs/prog.md",
		Help: "\nUsage: prog CMD\n.starts with a dot\n'and a quote\n",
		Commands: []Command{
			{Name: "sign", Summary: "sign files", Help: "\nUsage: prog sign --key FILE\n", Flags: FlagsOf(fs)},
			{Name: "log show", Section: "log", Help: "Usage: prog log show|list", Flags: FlagsOf(sub)},
			{Name: "log list", Section: "log", Help: "Usage: prog log show|list"},
		},
		SeeAlso: []string{"other(8)"},
	}
}

func TestFlagsOf(t *testing.T) {
	got := testProgram().Commands[0].Flags
	want := []Flag{
		{Name: "interval", Arg: "duration", Usage: "how often; a | pipe and a \\ backslash", Default: "2s"},
		{Name: "j", Arg: "int", Usage: "jobs"},
		{Name: "key", Arg: "FILE", Usage: "private key FILE"},
		{Name: "r", Usage: "walk directories"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("FlagsOf = %+v\nwant %+v", got, want)
	}
}

// The three renderings list the same flags per command, and reading them
// back finds exactly those.
func TestRoundTrip(t *testing.T) {
	p := testProgram()
	files, err := Files(p, []byte("# prog\n\nhand-written\n"))
	if err != nil {
		t.Fatal(err)
	}
	md, man := MarkdownFlags(string(files[p.Page])), ManFlags(string(files[ManPath(p)]))
	for _, c := range p.Commands {
		var want []string
		for _, f := range c.Flags {
			want = append(want, f.Dashed())
		}
		slices.Sort(want)
		full := "prog " + c.Name
		if !slices.Equal(man[full], want) {
			t.Errorf("%s: man %v, want %v", full, man[full], want)
		}
		if !slices.Equal(md[full], want) {
			t.Errorf("%s: markdown %v, want %v", full, md[full], want)
		}
	}
	page := string(files[p.Page])
	if !strings.HasPrefix(page, "# prog\n\nhand-written\n") {
		t.Errorf("hand-written text not kept:\n%s", page)
	}
	if !strings.Contains(page, `a \| pipe`) {
		t.Errorf("| not escaped in a table cell:\n%s", page)
	}
	m := string(files[ManPath(p)])
	for _, bad := range []string{"\n.starts", "\n'and"} {
		if strings.Contains(m, bad) {
			t.Errorf("man page has a line starting with a control character: %q", bad)
		}
	}
	if !strings.Contains(m, `\[u2014]`) {
		t.Error("non-ASCII not escaped in the man page")
	}
	// Regenerating over the result changes nothing.
	again, err := Files(p, files[p.Page])
	if err != nil {
		t.Fatal(err)
	}
	if string(again[p.Page]) != page {
		t.Errorf("regeneration not idempotent:\n%s\n---\n%s", page, again[p.Page])
	}
}

func TestRegions(t *testing.T) {
	regions := map[string]string{"a": "new a\n", "c": "new c\n"}
	in := "x\n" + beginMark + "a (note) -->\nold a\n" + endMark + "a -->\ny\n" +
		beginMark + "b -->\nold b\n" + endMark + "b -->\nz\n"
	got, err := rewriteRegions([]byte(in), regions)
	if err != nil {
		t.Fatal(err)
	}
	want := "x\n" + beginLine("a") + "\nnew a\n" + endLine("a") + "\ny\nz\n\n## `c`\n\n" + beginLine("c") + "\nnew c\n" + endLine("c") + "\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{
		beginMark + "a -->\n",                         // unterminated
		endMark + "a -->\n",                           // end without begin
		beginMark + "a -->\n" + endMark + "b -->\n",   // mismatched
		beginMark + "a -->\n" + beginMark + "b -->\n", // nested
		beginMark + "a -->\n" + endMark + "a -->\n" + beginMark + "a -->\n" + endMark + "a -->\n", // twice
	} {
		if _, err := rewriteRegions([]byte(bad), regions); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestCheckFindsDrift(t *testing.T) {
	root := t.TempDir()
	p := testProgram()
	if err := Generate(root, p); err != nil {
		t.Fatal(err)
	}
	if stale, err := Check(root, p); err != nil || len(stale) != 0 {
		t.Fatalf("fresh generation: stale %v, err %v", stale, err)
	}
	// A flag added to the program (as another change would) makes every
	// generated file stale.
	p.Commands[1].Flags = append(p.Commands[1].Flags, Flag{Name: "new", Usage: "a new flag"})
	stale, err := Check(root, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 4 {
		t.Errorf("stale = %v, want the page, the man page and both completions", stale)
	}
}

// groff accepts the man page without warnings.
func TestManPageLint(t *testing.T) {
	testenv.RequireTool(t, "groff")
	dir := t.TempDir()
	path := filepath.Join(dir, "prog.1")
	if err := os.WriteFile(path, []byte(Man(testProgram())), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("groff", "-man", "-ww", "-z", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

// The bash completion completes command words and a command's flags.
func TestBashCompletion(t *testing.T) {
	testenv.RequireTool(t, "bash")
	dir := t.TempDir()
	path := filepath.Join(dir, "prog")
	if err := os.WriteFile(path, []byte(Bash(testProgram())), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"prog", ""}, "sign log"},
		{[]string{"prog", "log", ""}, "show list"},
		{[]string{"prog", "sign", "--k"}, "--key"},
		{[]string{"prog", "log", "show", "--"}, "--json"},
	} {
		script := "source " + path + "; COMP_WORDS=(" + quoteWords(c.words) + "); COMP_CWORD=" +
			strconv.Itoa(len(c.words)-1) + "; _prog; echo \"${COMPREPLY[*]}\""
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("%q: got %q (%v), want %q", c.words, out, err, c.want)
		}
	}
}

func quoteWords(ws []string) string {
	var q []string
	for _, w := range ws {
		q = append(q, "'"+w+"'")
	}
	return strings.Join(q, " ")
}

// The checked-in man pages (docs/man) are accepted by groff without a
// warning.
func TestCheckedInManPages(t *testing.T) {
	testenv.RequireTool(t, "groff")
	pages, err := filepath.Glob("../../docs/man/*.[18]")
	if err != nil || len(pages) < 3 {
		t.Fatalf("docs/man: %v, %v", pages, err)
	}
	for _, p := range pages {
		out, err := exec.Command("groff", "-man", "-ww", "-z", p).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff %s: %v\n%s", p, err, out)
		}
	}
}

// The zsh completion offers a command's next words, its flags, and files
// after a flag that takes a value (compadd and _files stubbed: outside a
// completion widget they do not exist).
func TestZshCompletion(t *testing.T) {
	testenv.RequireTool(t, "zsh")
	dir := t.TempDir()
	path := filepath.Join(dir, "_prog")
	if err := os.WriteFile(path, []byte(Zsh(testProgram())), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		words  []string
		prefix string
		want   string
	}{
		{[]string{"prog", ""}, "", "sign log"},
		{[]string{"prog", "log", ""}, "", "show list"},
		{[]string{"prog", "sign", "--k"}, "--k", "--interval --key -j -r"},
		{[]string{"prog", "sign", "--key", ""}, "", "FILES"},
		{[]string{"prog", "log", "show", "-"}, "-", "--json"},
	} {
		script := `compadd() { [[ $1 == -- ]] && shift; print -r -- "$*" }; _files() { print FILES }; ` +
			"source " + path + " >/dev/null 2>&1; words=(" + quoteWords(c.words) + "); CURRENT=" +
			strconv.Itoa(len(c.words)) + "; PREFIX='" + c.prefix + "'; _prog"
		out, err := exec.Command("zsh", "-f", "-c", script).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			t.Errorf("%q: got %q (%v), want %q", c.words, out, err, c.want)
		}
	}
}
