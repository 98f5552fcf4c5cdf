// SPDX-License-Identifier: Apache-2.0

package lint

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// packageDirs returns the directories under root (slash-separated,
// relative) that hold Go files, leaving out testdata and hidden ones.
func packageDirs(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			seen[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// layoutRow is a row of a table in docs/DEVELOPING.md's Layout section:
// its first cell one package directory in back quotes.
var layoutRow = regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")

// layoutPackages returns the packages the Layout section of doc lists,
// in order, with repeats.
func layoutPackages(doc string) []string {
	_, sec, _ := strings.Cut(doc, "\n## Layout\n")
	sec, _, _ = strings.Cut(sec, "\n## ")
	var out []string
	for _, m := range layoutRow.FindAllStringSubmatch(sec, -1) {
		out = append(out, strings.TrimSuffix(m[1], "/"))
	}
	return out
}

// layoutProblems compares the listed packages with the package
// directories: each must be listed once, and only they.
func layoutProblems(listed, dirs []string) []string {
	var problems []string
	count := map[string]int{}
	for _, p := range listed {
		count[p]++
		if count[p] == 2 {
			problems = append(problems, p+": listed more than once")
		}
	}
	for _, d := range dirs {
		if count[d] == 0 {
			problems = append(problems, d+": a package directory the layout does not list")
		}
	}
	for _, p := range listed {
		if !slices.Contains(dirs, p) && count[p] > 0 {
			problems = append(problems, p+": listed, but no package directory")
			count[p] = 0
		}
	}
	return problems
}

// TestLayoutListsEveryPackage: docs/DEVELOPING.md's Layout tables (formats,
// adapters, roles, mains, tests and tools) name every package directory
// once, and nothing else, so that the folder list stays the architecture.
func TestLayoutListsEveryPackage(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "DEVELOPING.md"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := packageDirs(t, root)
	if len(dirs) < 40 || !slices.Contains(dirs, "cmd/intact") {
		t.Fatalf("package directories found: %v", dirs)
	}
	for _, p := range layoutProblems(layoutPackages(string(doc)), dirs) {
		t.Errorf("docs/DEVELOPING.md, Layout: %s", p)
	}
}

// TestLayoutProblemsFound: the check names a package missing from the
// table, one listed twice and one listed that does not exist.
func TestLayoutProblemsFound(t *testing.T) {
	doc := "# x\n## Layout\n| package | what |\n|---|---|\n| `a` | one |\n| `b/` | two |\n| `b` | again |\n| `gone` | was |\n## Rules\n| `c` | not in the layout |\n"
	listed := layoutPackages(doc)
	if want := []string{"a", "b", "b", "gone"}; !slices.Equal(listed, want) {
		t.Fatalf("listed %v, want %v", listed, want)
	}
	got := layoutProblems(listed, []string{"a", "b", "c"})
	want := []string{"b: listed more than once", "c: a package directory the layout does not list", "gone: listed, but no package directory"}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}
