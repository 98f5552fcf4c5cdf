// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"bytes"
	"slices"
)

// PCRs holds PCR values by bank and PCR index (see the package
// documentation for why banks are keyed by [Algo]).
type PCRs map[Algo]map[int][]byte

// Banks returns the banks of p, sorted by id.
func (p PCRs) Banks() []Algo {
	out := make([]Algo, 0, len(p))
	for b := range p {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

// Clone returns a deep copy of p.
func (p PCRs) Clone() PCRs {
	out := make(PCRs, len(p))
	for b, vals := range p {
		m := make(map[int][]byte, len(vals))
		for i, v := range vals {
			m[i] = bytes.Clone(v)
		}
		out[b] = m
	}
	return out
}
