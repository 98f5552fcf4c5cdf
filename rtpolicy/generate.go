// SPDX-License-Identifier: Apache-2.0

package rtpolicy

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/intactsec/intact/mlog"

	"github.com/intactsec/intact/internal/quote"
)

// GenerateReport says what generating a policy did.
type GenerateReport struct {
	Files    int `json:"files"`    // paths (and buffers) listed
	Signed   int `json:"signed"`   // files left to their signature (trusted keys)
	Modified int `json:"modified"` // dpkg: files whose md5sum differs from the package's
	Skipped  int `json:"skipped"`  // files not listed (see Problems)
	// Problems are "path: reason", the first MaxProblems, for people: the
	// path quoted as a file name and the reason's control bytes escaped
	// (internal/quote), so that a name cannot forge a line.
	Problems []string `json:"problems,omitempty"`
}

// MaxProblems bounds GenerateReport.Problems.
const MaxProblems = 1000

// Problem records a file not listed.
func (r *GenerateReport) Problem(path string, err error) {
	r.Skipped++
	if len(r.Problems) < MaxProblems {
		r.Problems = append(r.Problems, quote.Name(path)+": "+quote.Text(err.Error()))
	}
}

// problem records an entry not listed that is not a path (a record of a
// measurement list without a name).
func (r *GenerateReport) problem(what string, err error) {
	r.Skipped++
	if len(r.Problems) < MaxProblems {
		r.Problems = append(r.Problems, quote.Text(what+": "+err.Error()))
	}
}

// FromLog makes a policy of what a measurement list says ran: every
// file record's digest by path, ima-buf records' by name. Violations, the
// boot_aggregate and the boot id record (mlog.IsBootRecord) are left out; records whose digest algorithm is
// unknown are reported.
func FromLog(l *mlog.List, name string) (Policy, *GenerateReport, error) {
	p := Policy{Format: Version, Name: name, Digests: map[string][]string{}}
	rep := &GenerateReport{}
	for i, r := range l.UnverifiedRecords() {
		n, ok := r.Name()
		if !ok {
			rep.problem(fmt.Sprintf("record %d", i), errors.New("no name field"))
			continue
		}
		if n == mlog.BootAggregateName || mlog.IsBootRecord(int64(i), &r) || r.Violation() {
			continue
		}
		a, dg, ok := r.FileDigest()
		if !ok {
			rep.Problem(n, fmt.Errorf("record %d: no digest field", i))
			continue
		}
		a = recordAlgo(strings.TrimPrefix(strings.TrimPrefix(a, "ima:"), "verity:"))
		digest, err := NormalizeDigest(a + ":" + hex.EncodeToString(dg))
		if err != nil {
			rep.Problem(n, fmt.Errorf("record %d: %v", i, err))
			continue
		}
		m := p.Digests
		if r.Template == "ima-buf" {
			if p.Buffers == nil {
				p.Buffers = map[string][]string{}
			}
			m = p.Buffers
		}
		if len(m[n]) == 0 {
			rep.Files++
		}
		m[n] = append(m[n], digest)
	}
	c, err := Canonical(p)
	return c, rep, err
}
