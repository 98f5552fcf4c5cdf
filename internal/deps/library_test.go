// SPDX-License-Identifier: Apache-2.0

package deps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

// libraryRules name what a library must not link: packages that delegate
// I/O through interfaces must not link the code that does it (Main is the
// library's import path).
var libraryRules = []Rule{
	{
		// The decision engine depends on interfaces only: its Inspector
		// appraises, reads labels and hashes; the daemon's adapter over
		// package appraise lives in cmd/intactd (issue 16 item 3).
		Main: mod + "/enforce",
		Forbid: []Forbid{
			{mod + "/appraise", "the engine appraises through its Inspector (the daemon's adapter is in cmd/intactd)"},
			{mod + "/evm", "security.evm is checked by the Inspector"},
			{mod + "/sig", "signatures are checked by the Inspector"},
			{mod + "/internal/xattr", "labels are read by the Inspector"},
		},
	},
}

// typesOnly names packages a library may use only the types and constants
// of (no function, no variable): vocabulary, not I/O. probe is a function
// of the package the self-test calls.
var typesOnly = []struct{ lib, pkg, probe, why string }{
	{mod + "/enforce", mod + "/label", "ParseIMA", "the engine names label types; the Inspector reads and parses labels"},
	{mod + "/enforce", mod + "/digest", "File", "the engine names algorithms and digests; the Inspector hashes files"},
}

// checkTypesOnly reports every name a library selects from a types-only
// package that the package does not declare as a type or a constant.
// extra adds files to a library (the self-test's probes).
func checkTypesOnly(t *testing.T, g Graph, extra map[string][]string) []string {
	t.Helper()
	var problems []string
	for _, r := range typesOnly {
		lib, pkg := g[r.lib], g[r.pkg]
		if lib == nil || pkg == nil {
			t.Fatalf("%s or %s not in the package graph", r.lib, r.pkg)
		}
		sel, err := Selected(append(lib.Files(), extra[r.lib]...))
		if err != nil {
			t.Fatal(err)
		}
		decl, err := Declared(pkg.Files())
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range sel[r.pkg] {
			if k := decl[name]; k != "type" && k != "const" {
				problems = append(problems, r.lib+" uses "+r.pkg+"."+name+" (a "+k+"; "+r.why+")")
			}
		}
	}
	return problems
}

func checkLibraries(t *testing.T, g Graph) []string {
	t.Helper()
	var problems []string
	for _, r := range libraryRules {
		problems = append(problems, checkRule(t, g, r)...)
	}
	return problems
}

// TestLibraryDeps: no library links what its rule forbids, nor uses more
// than the types and constants of a types-only package.
func TestLibraryDeps(t *testing.T) {
	g := load(t, "")
	for _, p := range append(checkLibraries(t, g), checkTypesOnly(t, g, nil)...) {
		t.Error(p)
	}
}

// TestLibraryDepsCatchLinks proves the library rules can fail: an overlay
// (nothing is written to the tree) adds to each library a file importing
// one package under each forbidden path, and a file calling a function of
// each types-only package is added to the selection check; every one must
// be reported.
func TestLibraryDepsCatchLinks(t *testing.T) {
	testenv.RequireTool(t, "go")
	root := testenv.Root(t)
	all, err := Load(root, "", "./...")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ov := newOverlay(t, root)
	want := map[string]bool{}
	for _, r := range libraryRules {
		var imports []string
		for _, f := range r.Forbid {
			probe := pick(all, root, f.Path, r.Known)
			if probe == "" {
				t.Fatalf("%s: no importable package under %s to prove the rule with", r.Main, f.Path)
			}
			imports = append(imports, probe)
			want[r.Main+" links "+probe] = true
		}
		ov.add(filepath.Join(root, strings.TrimPrefix(r.Main, mod+"/"), "zz_deps_probe.go"), blankImports(all[r.Main].Name, imports))
	}
	got := map[string]bool{}
	for _, p := range checkLibraries(t, load(t, ov.file())) {
		if i := strings.Index(p, " ("); i > 0 {
			p = p[:i]
		}
		got[p] = true
	}
	// A call of a function of each types-only package.
	extra := map[string][]string{}
	for i, r := range typesOnly {
		decl, err := Declared(all[r.pkg].Files())
		if err != nil {
			t.Fatal(err)
		}
		if decl[r.probe] != "func" {
			t.Fatalf("%s declares no function %s to prove the rule with", r.pkg, r.probe)
		}
		name := r.pkg[strings.LastIndex(r.pkg, "/")+1:]
		f := filepath.Join(tmp, "sel"+string(rune('a'+i))+".go")
		src := "package x\n\nimport \"" + r.pkg + "\"\n\nvar _ = " + name + "." + r.probe + "\n"
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		extra[r.lib] = append(extra[r.lib], f)
		want[r.lib+" uses "+r.pkg+"."+r.probe] = true
	}
	for _, p := range checkTypesOnly(t, all, extra) {
		if i := strings.Index(p, " ("); i > 0 {
			p = p[:i]
		}
		got[p] = true
	}
	for w := range want {
		if !got[w] {
			t.Errorf("not caught: %s", w)
		}
	}
	if len(want) < 2 {
		t.Errorf("only %d probes", len(want))
	}
}
