// SPDX-License-Identifier: Apache-2.0

package clidoc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Paths of the generated files, relative to the repository.
func ManPath(p *Program) string { return filepath.Join("docs", "man", p.Name+"."+p.ManSection) }
func BashPath(p *Program) string {
	return filepath.Join("dist", "completion", "bash", p.Name)
}
func ZshPath(p *Program) string { return filepath.Join("dist", "completion", "zsh", "_"+p.Name) }

const (
	beginMark = "<!-- BEGIN GENERATED: "
	endMark   = "<!-- END GENERATED: "
)

func beginLine(key string) string {
	return beginMark + key + " (from the flags: edit them, then run scripts/gendocs.sh) -->"
}

func endLine(key string) string { return endMark + key + " -->" }

// Files returns every generated file's content by path, the page with its
// regions rewritten from old (the page as it is now).
func Files(p *Program, oldPage []byte) (map[string][]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	page, err := rewriteRegions(oldPage, Markdown(p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Page, err)
	}
	return map[string][]byte{
		p.Page:      page,
		ManPath(p):  []byte(Man(p)),
		BashPath(p): []byte(Bash(p)),
		ZshPath(p):  []byte(Zsh(p)),
	}, nil
}

// rewriteRegions replaces each region's body with regions[key]. A region
// of no key is removed; a key without a region is appended at the end as
// a new "## `key`" section, for a human to move.
func rewriteRegions(page []byte, regions map[string]string) ([]byte, error) {
	var out bytes.Buffer
	done := map[string]bool{}
	lines := strings.SplitAfter(string(page), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		key, ok := regionKey(l, beginMark)
		if !ok {
			if _, isEnd := regionKey(l, endMark); isEnd {
				return nil, fmt.Errorf("line %d: END GENERATED without BEGIN", i+1)
			}
			out.WriteString(l)
			continue
		}
		j := i + 1
		for ; j < len(lines); j++ {
			if k, ok := regionKey(lines[j], endMark); ok {
				if k != key {
					return nil, fmt.Errorf("line %d: region %q ends as %q", j+1, key, k)
				}
				break
			}
			if _, ok := regionKey(lines[j], beginMark); ok {
				return nil, fmt.Errorf("line %d: region inside region %q", j+1, key)
			}
		}
		if j == len(lines) {
			return nil, fmt.Errorf("line %d: region %q has no END GENERATED", i+1, key)
		}
		i = j
		body, known := regions[key]
		if !known {
			continue // a command that is gone
		}
		if done[key] {
			return nil, fmt.Errorf("region %q twice", key)
		}
		done[key] = true
		writeRegion(&out, key, body)
	}
	var missing []string
	for k := range regions {
		if !done[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n\n")) {
			out.WriteString("\n")
		}
		fmt.Fprintf(&out, "## `%s`\n\n", k)
		writeRegion(&out, k, regions[k])
	}
	return out.Bytes(), nil
}

func writeRegion(out *bytes.Buffer, key, body string) {
	out.WriteString(beginLine(key) + "\n")
	out.WriteString(body)
	out.WriteString(endLine(key) + "\n")
}

func regionKey(line, mark string) (string, bool) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, mark) || !strings.HasSuffix(line, "-->") {
		return "", false
	}
	k := strings.TrimSuffix(strings.TrimPrefix(line, mark), "-->")
	if i := strings.Index(k, " ("); i >= 0 {
		k = k[:i]
	}
	return strings.TrimSpace(k), true
}

// Generate writes the program's generated files under the repository
// root.
func Generate(root string, p *Program) error {
	old, err := os.ReadFile(filepath.Join(root, p.Page))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	files, err := Files(p, old)
	if err != nil {
		return err
	}
	for path, b := range files {
		full := filepath.Join(root, path)
		if cur, err := os.ReadFile(full); err == nil && bytes.Equal(cur, b) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Check returns the generated files under root that differ from a fresh
// generation, with the first differing line of each.
func Check(root string, p *Program) ([]string, error) {
	old, err := os.ReadFile(filepath.Join(root, p.Page))
	if err != nil {
		return nil, err
	}
	files, err := Files(p, old)
	if err != nil {
		return nil, err
	}
	var stale []string
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			stale = append(stale, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		if !bytes.Equal(got, want) {
			stale = append(stale, path+": "+firstDiff(string(got), string(want)))
		}
	}
	sort.Strings(stale)
	return stale, nil
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, a fresh generation has %q", i+1, gl, wl)
		}
	}
	return "differs"
}
