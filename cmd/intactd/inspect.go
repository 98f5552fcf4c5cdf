// SPDX-License-Identifier: Apache-2.0

package main

import (
	"io"
	"math"
	"os"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/xattr"
)

// fileInspector is the daemon's enforce.Inspector: package appraise judges
// the file and, in the same read of the content, digests it for the
// measurement and the audit; a decision without an appraisal reads the
// label (internal/xattr) and digests the content (package digest) here. Each
// Inspect reads the content at most once.
type fileInspector struct{ app *appraise.Appraiser }

func (x fileInspector) Inspect(f *os.File, path string, need enforce.Need) enforce.Inspection {
	var in enforce.Inspection
	if need.Appraise {
		r := x.app.FileAlso(f, path, need.Digests...)
		in.Appraisal = enforce.Appraisal{OK: r.OK(), Signed: r.Signed(), Verdict: string(r.Verdict), Reason: r.Reason}
		in.Label, in.Digests = r.Value, r.Digests
		return in
	}
	if need.Label {
		// No label, or none readable: the ima-sig record has no signature.
		if raw, err := xattr.FGet(f, xattr.IMA(false)); err == nil && len(raw) > 0 {
			in.Label = raw
		}
	}
	if len(need.Digests) > 0 {
		// Through pread from offset 0, whatever the fd's offset.
		in.Digests, in.Err = digest.FileSums(io.NewSectionReader(f, 0, math.MaxInt64), need.Digests...)
	}
	return in
}
