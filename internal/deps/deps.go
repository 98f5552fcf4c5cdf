// SPDX-License-Identifier: Apache-2.0

// Package deps checks what each binary of the module links: a Rule names
// the packages a main package must not link (a path forbids the package
// and every package under it) and whether it may link cgo code; Check
// reports every forbidden package in the main's build graph with the
// import chain that brings it in. The graph is the output of
// `go list -json -deps` (Load runs it); Check itself is pure, so the
// rules' self-tests can feed it made-up graphs.
//
// The rules for intact's binaries live in deps_test.go (TestBinaryDeps).
package deps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
)

// Package is the part of one `go list -json` record the checks read.
type Package struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Standard   bool
	DepOnly    bool
	CgoFiles   []string
	Imports    []string
	Error      *struct{ Err string }
}

// Forbid names a package (and the packages under it) a binary must not
// link, and why.
type Forbid struct {
	Path string
	Why  string
}

// Rule is what one main package may not link.
type Rule struct {
	Main   string   // import path of the main package
	Forbid []Forbid // forbidden packages and subtrees
	// NoCgo forbids non-standard packages with cgo files (the standard
	// library's net and os/user fall back to pure Go without cgo).
	NoCgo bool
	// Known maps a package path (and the packages under it) to the reason
	// it is tolerated for now although Forbid or NoCgo would reject it:
	// today's state, pinned so that nothing new slips in. An entry that
	// excuses nothing the main links is reported as stale.
	Known map[string]string
}

// Violation is one forbidden package in a main's build graph.
type Violation struct {
	Main    string
	Package string
	Why     string
	Chain   []string // main → … → Package
}

func (v Violation) String() string {
	return fmt.Sprintf("%s links %s (%s) via %s", v.Main, v.Package, v.Why, strings.Join(v.Chain, " → "))
}

// Under reports whether path is prefix or a package below it.
func Under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Graph indexes packages by import path.
type Graph map[string]*Package

// NewGraph indexes pkgs.
func NewGraph(pkgs []Package) Graph {
	g := make(Graph, len(pkgs))
	for i := range pkgs {
		g[pkgs[i].ImportPath] = &pkgs[i]
	}
	return g
}

// Mains returns the import paths of the main packages that were listed
// (not only dependencies), sorted.
func (g Graph) Mains() []string {
	var m []string
	for p, pkg := range g {
		if pkg.Name == "main" && !pkg.DepOnly {
			m = append(m, p)
		}
	}
	sort.Strings(m)
	return m
}

// chains returns, for every package reachable from root, the shortest
// import chain from root to it (breadth first, imports in sorted order,
// so the result is deterministic).
func (g Graph) chains(root string) map[string][]string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		pkg := g[p]
		if pkg == nil {
			continue
		}
		imps := append([]string(nil), pkg.Imports...)
		sort.Strings(imps)
		for _, imp := range imps {
			if _, seen := prev[imp]; seen || g[imp] == nil {
				continue // "C" and the like are not packages of the graph
			}
			prev[imp] = p
			queue = append(queue, imp)
		}
	}
	out := make(map[string][]string, len(prev))
	for p := range prev {
		var c []string
		for q := p; q != ""; q = prev[q] {
			c = append(c, q)
		}
		for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
			c[i], c[j] = c[j], c[i]
		}
		out[p] = c
	}
	return out
}

// Check returns the violations of r in g (sorted by package) and the
// Known entries that match no package the main links (stale: the
// exception can go). It is an error if the main is not in g or a package
// of its graph has an error.
func Check(g Graph, r Rule) (violations []Violation, stale []string, err error) {
	if g[r.Main] == nil {
		return nil, nil, fmt.Errorf("deps: %s is not in the package graph", r.Main)
	}
	chains := g.chains(r.Main)
	linked := make([]string, 0, len(chains))
	for p := range chains {
		linked = append(linked, p)
	}
	sort.Strings(linked)
	used := map[string]bool{}
	known := func(p string) bool {
		for k := range r.Known {
			if Under(p, k) {
				used[k] = true
				return true
			}
		}
		return false
	}
	for _, p := range linked {
		pkg := g[p]
		if pkg.Error != nil {
			return nil, nil, fmt.Errorf("deps: %s: %s", p, pkg.Error.Err)
		}
		var why []string
		for _, f := range r.Forbid {
			if Under(p, f.Path) {
				why = append(why, f.Why)
			}
		}
		if r.NoCgo && !pkg.Standard && len(pkg.CgoFiles) > 0 {
			why = append(why, "cgo: "+strings.Join(pkg.CgoFiles, ", "))
		}
		if len(why) == 0 || known(p) {
			continue
		}
		violations = append(violations, Violation{Main: r.Main, Package: p, Why: strings.Join(why, "; "), Chain: chains[p]})
	}
	for k := range r.Known {
		if !used[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	return violations, stale, nil
}

// Decode reads the concatenated records of `go list -json`.
func Decode(r io.Reader) ([]Package, error) {
	var pkgs []Package
	dec := json.NewDecoder(r)
	for {
		var p Package
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("deps: decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// Load runs `go list -e -json -deps` on patterns in the module at dir
// (with cgo enabled, so that cgo files are reported, and for the build
// the binaries ship with: no extra build tags) and decodes the result.
// overlay, if not empty, is passed as -overlay.
func Load(dir, overlay string, patterns ...string) (Graph, error) {
	args := []string{"list", "-e", "-deps",
		"-json=ImportPath,Name,Dir,GoFiles,Standard,DepOnly,CgoFiles,Imports,Error"}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("deps: go %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	pkgs, err := Decode(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	return NewGraph(pkgs), nil
}

// Symbols returns the names of the symbols defined in the Go binary at
// path (`go tool nm`): what the linker kept, which is less than the
// packages linked when only part of a package is reachable.
func Symbols(path string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("go", "tool", "nm", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("deps: go tool nm %s: %v: %s", path, err, stderr.String())
	}
	return ParseNM(string(out)), nil
}

// ParseNM returns the defined symbols of `go tool nm` output ("ADDR KIND
// NAME", or "KIND NAME" for undefined ones, which it leaves out).
func ParseNM(out string) []string {
	var syms []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || len(f[1]) != 1 || f[1] == "U" {
			continue
		}
		syms = append(syms, strings.Join(f[2:], " "))
	}
	return syms
}

// MatchSymbols returns the symbols that match any of patterns, sorted.
func MatchSymbols(syms []string, patterns []*regexp.Regexp) []string {
	var hit []string
	for _, s := range syms {
		for _, p := range patterns {
			if p.MatchString(s) {
				hit = append(hit, s)
				break
			}
		}
	}
	sort.Strings(hit)
	return hit
}

// Files returns the paths of the package's Go files (no tests).
func (p *Package) Files() []string {
	out := make([]string, len(p.GoFiles))
	for i, f := range p.GoFiles {
		out[i] = p.Dir + "/" + f
	}
	return out
}

// Selected returns what the Go files at paths use of each package they
// import: import path → the names selected from it (pkg.Name), sorted.
// A package imported but never selected from (a blank or dot import)
// maps to no names.
func Selected(paths []string) (map[string][]string, error) {
	fset := token.NewFileSet()
	seen := map[string]map[string]bool{}
	for _, path := range paths {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("deps: %w", err)
		}
		local := map[string]string{} // local name → import path
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			if seen[ip] == nil {
				seen[ip] = map[string]bool{}
			}
			name := ip[strings.LastIndex(ip, "/")+1:]
			if imp.Name != nil {
				name = imp.Name.Name
			}
			local[name] = ip
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok {
					if ip, ok := local[id.Name]; ok {
						seen[ip][sel.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	out := make(map[string][]string, len(seen))
	for ip, names := range seen {
		out[ip] = []string{}
		for n := range names {
			out[ip] = append(out[ip], n)
		}
		sort.Strings(out[ip])
	}
	return out, nil
}

// Declared returns the kind ("type", "const", "var" or "func") of each
// top-level name the Go files at paths declare (methods are not
// top-level names).
func Declared(paths []string) (map[string]string, error) {
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, path := range paths {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("deps: %w", err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					out[d.Name.Name] = "func"
				}
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					switch sp := sp.(type) {
					case *ast.TypeSpec:
						out[sp.Name.Name] = "type"
					case *ast.ValueSpec:
						for _, n := range sp.Names {
							out[n.Name] = d.Tok.String()
						}
					}
				}
			}
		}
	}
	return out, nil
}
