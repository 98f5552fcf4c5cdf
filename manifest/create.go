// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"crypto"
	"fmt"
	"io"
	"path/filepath"
	"slices"
)

// CreateOptions configure Create.
type CreateOptions struct {
	ScanOptions
	Signer crypto.Signer
	KeyID  uint32
}

// Create writes the signed manifest of the trees at roots to w and returns
// the number of entries. Roots are absolute and clean, none inside
// another. Any entry that cannot be read fails it: a manifest never
// leaves out what it could not read.
func Create(w io.Writer, roots []string, opts CreateOptions) (int, error) {
	roots = slices.Clone(roots)
	slices.Sort(roots)
	for i, r := range roots {
		if !filepath.IsAbs(r) || filepath.Clean(r) != r {
			return 0, fmt.Errorf("root %q is not a clean absolute path", r)
		}
		if i > 0 && isBelow(r, roots[i-1]) {
			return 0, fmt.Errorf("root %s is inside root %s", r, roots[i-1])
		}
		if excl, _ := opts.Rules.For(r); excl {
			return 0, fmt.Errorf("root %s is excluded by the rules", r)
		}
	}
	mw, err := NewWriter(w, Header{Algo: opts.Algo, Xattrs: opts.Xattrs, Rules: opts.Rules.Lines(), CrossFS: opts.CrossFS})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, root := range roots {
		if err := mw.Root(root); err != nil {
			return 0, err
		}
		err := Scan(root, root, opts.ScanOptions, func(e *Entry, err error) error {
			if err != nil {
				return fmt.Errorf("%s: %w", root, err)
			}
			n++
			return mw.Add(e)
		})
		if err != nil {
			return 0, err
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("nothing to record (every root excluded by the rules?)")
	}
	return n, mw.Sign(opts.Signer, opts.KeyID)
}
