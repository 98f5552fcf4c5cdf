// SPDX-License-Identifier: Apache-2.0

package deps

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// overlay is a go list/go build -overlay: source files that the build
// sees in the tree, written only to a temporary directory (the tests that
// prove a rule can fail add probes through it, nothing is written to the
// tree).
type overlay struct {
	t         *testing.T
	root, tmp string
	replace   map[string]string
}

func newOverlay(t *testing.T, root string) *overlay {
	return &overlay{t: t, root: root, tmp: t.TempDir(), replace: map[string]string{}}
}

// add makes the build see src at path, a file under root.
func (o *overlay) add(path, src string) {
	o.t.Helper()
	f := filepath.Join(o.tmp, strings.ReplaceAll(strings.TrimPrefix(path, o.root+"/"), "/", "_"))
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		o.t.Fatal(err)
	}
	o.replace[path] = f
}

// file writes the overlay's JSON and returns its path, for -overlay.
func (o *overlay) file() string {
	o.t.Helper()
	b, err := json.Marshal(map[string]any{"Replace": o.replace})
	if err != nil {
		o.t.Fatal(err)
	}
	f := filepath.Join(o.tmp, "overlay.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		o.t.Fatal(err)
	}
	return f
}

// blankImports is a Go file of package pkg that imports each of imports
// for its side effects: what links them into pkg.
func blankImports(pkg string, imports []string) string {
	src := "package " + pkg + "\n\nimport (\n"
	for _, imp := range imports {
		src += "\t_ \"" + imp + "\"\n"
	}
	return src + ")\n"
}
