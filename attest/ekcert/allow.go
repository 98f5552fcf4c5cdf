// SPDX-License-Identifier: Apache-2.0

package ekcert

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Allowlist names EKs the operator trusts without a maker's certificate
// (swtpm, lab machines, the quickstart's simulator): each line is a
// KeyHash and a name,
//
//	sha256:3f1c…e2 lab-swtpm-1
//
// Blank lines and lines starting with '#' are ignored.
type Allowlist struct {
	names map[string]string // KeyHash -> name
}

// Len is the number of entries.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.names)
}

// Lookup returns the name of an allowlisted key hash.
func (a *Allowlist) Lookup(hash string) (string, bool) {
	if a == nil {
		return "", false
	}
	n, ok := a.names[hash]
	return n, ok
}

// Add allows a key hash under a name.
func (a *Allowlist) Add(hash, name string) error {
	h, ok := strings.CutPrefix(hash, "sha256:")
	if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != 32 || strings.ToLower(h) != h {
		return fmt.Errorf("%q is not an ek hash (sha256: and 64 lowercase hex digits)", hash)
	}
	if name == "" {
		return fmt.Errorf("ek %s: no name", hash)
	}
	if a.names == nil {
		a.names = map[string]string{}
	}
	a.names[hash] = name
	return nil
}

// ParseAllowlist parses an allowlist; errors name the line.
func ParseAllowlist(b []byte) (*Allowlist, error) {
	a := &Allowlist{names: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hash, name, _ := strings.Cut(line, " ")
		if err := a.Add(hash, strings.TrimSpace(name)); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return a, nil
}

// LoadAllowlist reads an allowlist file; errors name it.
func LoadAllowlist(path string) (*Allowlist, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ek allowlist: %w", err)
	}
	a, err := ParseAllowlist(b)
	if err != nil {
		return nil, fmt.Errorf("ek allowlist %s: %w", path, err)
	}
	return a, nil
}

// Hashes returns the allowlisted key hashes.
func (a *Allowlist) Hashes() []string {
	if a == nil {
		return nil
	}
	out := make([]string, 0, len(a.names))
	for h := range a.names {
		out = append(out, h)
	}
	return out
}
