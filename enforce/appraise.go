// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"os"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/digest"
)

// FileAppraiser adapts an [appraise.Appraiser] (labels, signatures and,
// when configured, EVM) to the engine.
func FileAppraiser(a *appraise.Appraiser) Appraiser { return appraiseAdapter{a} }

type appraiseAdapter struct{ a *appraise.Appraiser }

func (x appraiseAdapter) Appraise(f *os.File, path string) Appraisal {
	r := x.a.File(f, path)
	a := Appraisal{OK: r.OK(), Signed: r.Signed(), Verdict: string(r.Verdict), Reason: r.Reason}
	if r.DigestAlgo == digest.SHA256 {
		a.SHA256 = r.Digest
	}
	return a
}
