// SPDX-License-Identifier: Apache-2.0

package rtpolicy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/intactsec/intact/internal/quote"
)

// PathChange is a path listed by both policies with different digests.
type PathChange struct {
	Path    string   `json:"path"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Delta is what changes from policy A to policy B.
type Delta struct {
	AddedPaths      map[string][]string `json:"added_paths,omitempty"`
	RemovedPaths    map[string][]string `json:"removed_paths,omitempty"`
	Changed         []PathChange        `json:"changed,omitempty"`
	AddedBuffers    map[string][]string `json:"added_buffers,omitempty"`
	RemovedBuffers  map[string][]string `json:"removed_buffers,omitempty"`
	ChangedBuffers  []PathChange        `json:"changed_buffers,omitempty"`
	AddedExcludes   []string            `json:"added_excludes,omitempty"`
	RemovedExcludes []string            `json:"removed_excludes,omitempty"`
	AddedKeys       []string            `json:"added_keys,omitempty"`
	RemovedKeys     []string            `json:"removed_keys,omitempty"`
	Flags           []string            `json:"flags,omitempty"`   // changed settings, "name: a -> b"
	Windows         []string            `json:"windows,omitempty"` // added or removed windows
}

// Empty reports whether the policies are equivalent.
func (d *Delta) Empty() bool {
	return len(d.AddedPaths) == 0 && len(d.RemovedPaths) == 0 && len(d.Changed) == 0 &&
		len(d.AddedBuffers) == 0 && len(d.RemovedBuffers) == 0 && len(d.ChangedBuffers) == 0 &&
		len(d.AddedExcludes) == 0 && len(d.RemovedExcludes) == 0 && len(d.AddedKeys) == 0 &&
		len(d.RemovedKeys) == 0 && len(d.Flags) == 0 && len(d.Windows) == 0
}

func diffSets(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}

func diffMaps(a, b map[string][]string) (added, removed map[string][]string, changed []PathChange) {
	for _, p := range slices.Sorted(maps.Keys(b)) {
		old, ok := a[p]
		if !ok {
			if added == nil {
				added = map[string][]string{}
			}
			added[p] = b[p]
			continue
		}
		add, rem := diffSets(old, b[p])
		if len(add) > 0 || len(rem) > 0 {
			changed = append(changed, PathChange{Path: p, Added: add, Removed: rem})
		}
	}
	for p, list := range a {
		if _, ok := b[p]; !ok {
			if removed == nil {
				removed = map[string][]string{}
			}
			removed[p] = list
		}
	}
	return added, removed, changed
}

func windowLabel(w Window) string {
	n := 0
	for _, l := range w.Digests {
		n += len(l)
	}
	for _, l := range w.Buffers {
		n += len(l)
	}
	s := fmt.Sprintf("until %s: %d digests", w.Until.UTC().Format("2006-01-02T15:04:05Z"), n)
	if w.Note != "" {
		s += " (" + w.Note + ")"
	}
	return s
}

// Diff compares two policies (in canonical form, so that order and case
// do not count).
func Diff(a, b Policy) (*Delta, error) {
	ca, err := Canonical(a)
	if err != nil {
		return nil, fmt.Errorf("first policy: %w", err)
	}
	cb, err := Canonical(b)
	if err != nil {
		return nil, fmt.Errorf("second policy: %w", err)
	}
	d := &Delta{}
	d.AddedPaths, d.RemovedPaths, d.Changed = diffMaps(ca.Digests, cb.Digests)
	d.AddedBuffers, d.RemovedBuffers, d.ChangedBuffers = diffMaps(ca.Buffers, cb.Buffers)
	d.AddedExcludes, d.RemovedExcludes = diffSets(ca.Excludes, cb.Excludes)
	d.AddedKeys, d.RemovedKeys = diffSets(ca.Keys, cb.Keys)
	if ca.IgnoreViolations != cb.IgnoreViolations {
		d.Flags = append(d.Flags, fmt.Sprintf("ignore_violations: %v -> %v", ca.IgnoreViolations, cb.IgnoreViolations))
	}
	if ca.SignatureFallback != cb.SignatureFallback {
		d.Flags = append(d.Flags, fmt.Sprintf("signature_fallback: %v -> %v", ca.SignatureFallback, cb.SignatureFallback))
	}
	for _, src := range []string{"ima", "intact"} {
		pa, _ := (&Compiled{doc: ca}).LogPCR(src)
		pb, _ := (&Compiled{doc: cb}).LogPCR(src)
		if pa != pb {
			d.Flags = append(d.Flags, fmt.Sprintf("log_pcrs.%s: %d -> %d", src, pa, pb))
		}
	}
	var wa, wb []string
	for _, w := range ca.Windows {
		wa = append(wa, windowLabel(w))
	}
	for _, w := range cb.Windows {
		wb = append(wb, windowLabel(w))
	}
	add, rem := diffSets(wa, wb)
	for _, w := range add {
		d.Windows = append(d.Windows, "+ window "+w)
	}
	for _, w := range rem {
		d.Windows = append(d.Windows, "- window "+w)
	}
	return d, nil
}

// String renders the delta for people: "+ path digest" for what B
// accepts and A does not, "- path digest" for the reverse; paths are
// quoted as file names (internal/quote).
func (d *Delta) String() string {
	var b strings.Builder
	pm := func(sign, kind string, m map[string][]string) {
		for _, p := range slices.Sorted(maps.Keys(m)) {
			if len(m[p]) == 0 {
				fmt.Fprintf(&b, "%s %s%s (no digest)\n", sign, kind, quote.Name(p))
			}
			for _, dg := range m[p] {
				fmt.Fprintf(&b, "%s %s%s %s\n", sign, kind, quote.Name(p), dg)
			}
		}
	}
	ch := func(kind string, cs []PathChange) {
		for _, c := range cs {
			for _, dg := range c.Removed {
				fmt.Fprintf(&b, "~ %s%s - %s\n", kind, quote.Name(c.Path), dg)
			}
			for _, dg := range c.Added {
				fmt.Fprintf(&b, "~ %s%s + %s\n", kind, quote.Name(c.Path), dg)
			}
		}
	}
	pm("-", "", d.RemovedPaths)
	pm("+", "", d.AddedPaths)
	ch("", d.Changed)
	pm("-", "buffer ", d.RemovedBuffers)
	pm("+", "buffer ", d.AddedBuffers)
	ch("buffer ", d.ChangedBuffers)
	for _, e := range d.RemovedExcludes {
		fmt.Fprintf(&b, "- exclude %s\n", e)
	}
	for _, e := range d.AddedExcludes {
		fmt.Fprintf(&b, "+ exclude %s\n", e)
	}
	for _, k := range d.RemovedKeys {
		fmt.Fprintf(&b, "- key %.24s...\n", k)
	}
	for _, k := range d.AddedKeys {
		fmt.Fprintf(&b, "+ key %.24s...\n", k)
	}
	for _, f := range d.Flags {
		fmt.Fprintf(&b, "~ %s\n", f)
	}
	for _, w := range d.Windows {
		fmt.Fprintf(&b, "%s\n", w)
	}
	return b.String()
}
