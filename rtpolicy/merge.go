// SPDX-License-Identifier: Apache-2.0

package rtpolicy

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"

	"github.com/intactsec/intact/internal/quote"
)

// canonDigests normalizes, de-duplicates and sorts every list.
func canonDigests(field string, m map[string][]string) (map[string][]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string][]string, len(m))
	for path, list := range m {
		if path == "" {
			return nil, ferr("%s: empty path", field)
		}
		set := make([]string, 0, len(list))
		for _, d := range list {
			n, err := NormalizeDigest(d)
			if err != nil {
				return nil, ferr("%s[%q]: %v", field, path, err)
			}
			set = append(set, n)
		}
		sort.Strings(set)
		out[path] = slices.Compact(set)
	}
	return out, nil
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

// Canonical returns p checked and in canonical form: digests normalized
// (lower case), every list sorted without duplicates, windows by end time.
// Equal policies have equal canonical forms; signatures are made over
// CanonicalBytes.
func Canonical(p Policy) (Policy, error) {
	if _, err := Compile(p); err != nil {
		return Policy{}, err
	}
	out := clonePolicy(p)
	var err error
	if out.Digests, err = canonDigests("digests", p.Digests); err != nil {
		return Policy{}, err
	}
	if out.Digests == nil {
		out.Digests = map[string][]string{}
	}
	if out.Buffers, err = canonDigests("buffers", p.Buffers); err != nil {
		return Policy{}, err
	}
	if len(out.Buffers) == 0 {
		out.Buffers = nil
	}
	out.Excludes = sortedUnique(p.Excludes)
	out.Keys = sortedUnique(p.Keys)
	for i := range out.Windows {
		w := &out.Windows[i]
		w.Until = w.Until.UTC()
		if w.Digests, err = canonDigests("windows.digests", w.Digests); err != nil {
			return Policy{}, err
		}
		if w.Buffers, err = canonDigests("windows.buffers", w.Buffers); err != nil {
			return Policy{}, err
		}
	}
	sort.SliceStable(out.Windows, func(i, j int) bool { return out.Windows[i].Until.Before(out.Windows[j].Until) })
	if len(out.Windows) == 0 {
		out.Windows = nil
	}
	return out, nil
}

// CanonicalBytes returns the canonical JSON of p (see Canonical).
func CanonicalBytes(p Policy) ([]byte, error) {
	c, err := Canonical(p)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, ferr("%v", err)
	}
	return b, nil
}

// Conflict is a disagreement between merged policies, resolved as
// Resolution says.
type Conflict struct {
	Path       string `json:"path,omitempty"`
	Kind       string `json:"kind"`
	Detail     string `json:"detail"`
	Resolution string `json:"resolution"`
}

func (c Conflict) String() string {
	if c.Path != "" {
		return fmt.Sprintf("%s: %s: %s (%s)", quote.Name(c.Path), c.Kind, quote.Text(c.Detail), c.Resolution)
	}
	return fmt.Sprintf("%s: %s (%s)", c.Kind, c.Detail, c.Resolution)
}

// Kinds of Conflict.
const (
	ConflictDigests    = "different-digests" // a path listed with different digests
	ConflictExcluded   = "excluded"          // a path listed by one policy, excluded by another's regex
	ConflictViolations = "ignore-violations" // the inputs disagree on ignore_violations
	ConflictSigFall    = "signature-fallback"
	ConflictLogPCR     = "log-pcr" // the inputs want a list source on different PCRs
)

// Merge returns the union of policies: digests, buffers, excludes, keys
// and windows; names[i] names policies[i] in the conflicts. Where the
// inputs disagree the union is taken for lists (any listed digest
// passes), and the stricter choice for flags; every such case is
// reported. The name is the first input's; the release is the highest
// plus one.
func Merge(policies []Policy, names []string) (Policy, []Conflict, error) {
	if len(policies) == 0 {
		return Policy{}, nil, ferr("nothing to merge")
	}
	in := inputNames(names)
	canon := make([]Policy, len(policies))
	for i, p := range policies {
		c, err := Canonical(p)
		if err != nil {
			return Policy{}, nil, fmt.Errorf("%s: %w", in.name(i), err)
		}
		canon[i] = c
	}
	out, owner, conflicts := union(canon, in)
	var flags []Conflict
	out.IgnoreViolations, out.SignatureFallback, flags = mergeFlags(canon, in)
	conflicts = append(conflicts, flags...)
	conflicts = append(conflicts, logPCRConflicts(canon, in)...)
	out.LogPCRs = maps.Clone(canon[0].LogPCRs)
	out.BootPolicy = canon[0].BootPolicy
	conflicts = append(conflicts, excludedConflicts(canon, in, slices.Sorted(maps.Keys(out.Digests)), owner)...)
	c, err := Canonical(out)
	if err != nil {
		return Policy{}, nil, err
	}
	return c, conflicts, nil
}

// inputNames names Merge's inputs in conflicts: names[i], else "policy
// i+1".
type inputNames []string

func (n inputNames) name(i int) string {
	if i < len(n) {
		return n[i]
	}
	return fmt.Sprintf("policy %d", i+1)
}

// union merges the lists of the canonical inputs: digests, buffers,
// excludes, keys and windows, and the highest release plus one. It
// returns, for each path, the first input that lists it, and the paths
// the inputs list with different digests.
func union(canon []Policy, in inputNames) (out Policy, owner map[string]int, conflicts []Conflict) {
	out = Policy{Format: Version, Name: canon[0].Name, Digests: map[string][]string{}}
	owner = map[string]int{} // path -> first input listing it
	for i, p := range canon {
		out.Release = max(out.Release, p.Release)
		for _, path := range slices.Sorted(maps.Keys(p.Digests)) {
			list := p.Digests[path]
			prev, ok := out.Digests[path]
			if ok && !slices.Equal(prev, list) {
				conflicts = append(conflicts, Conflict{Path: path, Kind: ConflictDigests,
					Detail:     fmt.Sprintf("%s lists %v, %s lists %v", in.name(owner[path]), prev, in.name(i), list),
					Resolution: "all are accepted"})
			}
			if !ok {
				owner[path] = i
			}
			merged := append(slices.Clone(prev), list...)
			sort.Strings(merged)
			out.Digests[path] = slices.Compact(merged)
		}
		for path, list := range p.Buffers {
			if out.Buffers == nil {
				out.Buffers = map[string][]string{}
			}
			merged := append(out.Buffers[path], list...)
			sort.Strings(merged)
			out.Buffers[path] = slices.Compact(merged)
		}
		out.Excludes = append(out.Excludes, p.Excludes...)
		out.Keys = append(out.Keys, p.Keys...)
		out.Windows = append(out.Windows, p.Windows...)
	}
	out.Excludes, out.Keys = sortedUnique(out.Excludes), sortedUnique(out.Keys)
	out.Release++
	return out, owner, conflicts
}

// mergeFlags returns the stricter value of each flag, explained where the
// inputs differ from the first (or from a stricter value already taken).
func mergeFlags(canon []Policy, in inputNames) (ignoreViolations, signatureFallback bool, conflicts []Conflict) {
	iv, sf := canon[0].IgnoreViolations, canon[0].SignatureFallback
	for i, p := range canon[1:] {
		if p.IgnoreViolations != iv {
			conflicts = append(conflicts, Conflict{Kind: ConflictViolations,
				Detail:     fmt.Sprintf("%s and %s disagree", in.name(0), in.name(i+1)),
				Resolution: "violations fail (ignore_violations false)"})
			iv = false
		}
		if p.SignatureFallback != sf {
			conflicts = append(conflicts, Conflict{Kind: ConflictSigFall,
				Detail:     fmt.Sprintf("%s and %s disagree", in.name(0), in.name(i+1)),
				Resolution: "a signature that does not verify fails (signature_fallback false)"})
			sf = false
		}
	}
	return iv, sf, conflicts
}

// logPCRConflicts explains each input whose list PCRs differ from the
// first input's (which the merge keeps).
func logPCRConflicts(canon []Policy, in inputNames) []Conflict {
	var conflicts []Conflict
	first := &Compiled{doc: canon[0]}
	for i, p := range canon[1:] {
		for _, src := range []string{"ima", "intact"} {
			a, _ := first.LogPCR(src)
			if b, _ := (&Compiled{doc: p}).LogPCR(src); a != b {
				conflicts = append(conflicts, Conflict{Kind: ConflictLogPCR,
					Detail:     fmt.Sprintf("%s wants the %s list on pcr %d, %s on pcr %d", in.name(0), src, a, in.name(i+1), b),
					Resolution: fmt.Sprintf("pcr %d (the first input's)", a)})
			}
		}
	}
	return conflicts
}

// excludedConflicts names each listed path (paths, sorted; owner: the
// first input listing it) that another input's exclude matches and its
// owner's excludes do not: merged, it passes whatever its digest.
func excludedConflicts(canon []Policy, in inputNames, paths []string, owner map[string]int) []Conflict {
	res := make([][]*regexp.Regexp, len(canon))
	for i, p := range canon {
		for _, ex := range p.Excludes {
			if re, err := regexp.Compile(ex); err == nil { // Canonical compiled it
				res[i] = append(res[i], re)
			}
		}
	}
	matchesAny := func(list []*regexp.Regexp, path string) bool {
		for _, re := range list {
			if re.MatchString(path) {
				return true
			}
		}
		return false
	}
	var conflicts []Conflict
	for i, p := range canon {
		for j, re := range res[i] {
			for _, path := range paths {
				if re.MatchString(path) && !matchesAny(res[owner[path]], path) {
					conflicts = append(conflicts, Conflict{Path: path, Kind: ConflictExcluded,
						Detail:     fmt.Sprintf("listed by %s, excluded by %s (%q)", in.name(owner[path]), in.name(i), p.Excludes[j]),
						Resolution: "excluded: any digest passes"})
				}
			}
		}
	}
	return conflicts
}
