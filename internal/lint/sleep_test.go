// SPDX-License-Identifier: Apache-2.0

package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sleepMark is the comment a time.Sleep in a test must carry, on its line
// or the lines just above: "// time under test: why". The older phrase
// "time is the thing under test" counts too.
const sleepMark = "time under test:"

func hasSleepMark(comment string) bool {
	return strings.Contains(comment, sleepMark) || strings.Contains(comment, "time is the thing under test")
}

// unmarkedSleeps returns "file:line:column" of every time.Sleep call in
// src that lacks sleepMark in a comment on its line or in the comment lines
// just above it.
func unmarkedSleeps(fset *token.FileSet, name string, src []byte) ([]string, error) {
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(src), "\n")
	timeNames := map[string]bool{} // the names "time" is imported as
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			if imp.Name != nil {
				timeNames[imp.Name.Name] = true
			} else {
				timeNames["time"] = true
			}
		}
	}
	// The lines whose sleep is marked: the line of a comment with the
	// mark, and the line after a group of comment lines (alone on their
	// lines) with the mark in it.
	marked := map[int]bool{}
	for _, g := range f.Comments {
		has := false
		for _, c := range g.List {
			if hasSleepMark(c.Text) {
				has = true
				marked[fset.Position(c.Slash).Line] = true
			}
		}
		start := fset.Position(g.Pos())
		if has && strings.TrimSpace(lines[start.Line-1][:start.Column-1]) == "" {
			marked[fset.Position(g.End()).Line+1] = true
		}
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Sleep" {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || !timeNames[x.Name] {
			return true
		}
		pos := fset.Position(call.Pos())
		if !marked[pos.Line] {
			out = append(out, pos.String())
		}
		return true
	})
	return out, nil
}

// TestSleepsAreTimeUnderTest: a test that sleeps to let something happen
// fails on a loaded machine and wastes time on an idle one; it waits on the
// condition instead (testenv.Until / WaitFor, a channel, a readiness line).
// A sleep stays only where time itself is under test (a stall must outlast
// a deadline, a lease must lapse, nothing may arrive for a while), and says
// so: "// time under test: …" on its line or the line above.
func TestSleepsAreTimeUnderTest(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		files++
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		bad, err := unmarkedSleeps(fset, rel, src)
		if err != nil {
			return err
		}
		for _, b := range bad {
			t.Errorf("%s: time.Sleep without %q: wait on the condition (testenv.Until) or say what time is under test", b, "// "+sleepMark+" …")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d test files found under %s", files, root)
	}
}

// TestUnmarkedSleepsFound: the check finds an unmarked sleep (also through
// a renamed import) and accepts marked ones.
func TestUnmarkedSleepsFound(t *testing.T) {
	src := `package x

import (
	"time"
	tm "time"
)

func f() {
	time.Sleep(1) // waits for the server
	// time under test: a lease lapses,
	// and more words
	time.Sleep(2)
	time.Sleep(3) // nothing arrives meanwhile: time is the thing under test
	tm.Sleep(4)
	go func() { time.Sleep(5) }()
}
`
	got, err := unmarkedSleeps(token.NewFileSet(), "x_test.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"x_test.go:9:2", "x_test.go:14:2", "x_test.go:15:14"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("found %v, want %v", got, want)
	}
}
