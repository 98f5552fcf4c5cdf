// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"bytes"
	"crypto/sha256"
	_ "crypto/sha512" // the fake's sha512 labels
	"encoding/hex"
	"slices"
	"testing"

	"github.com/intactsec/intact/digest"
)

// TestOneReadPerDecision (issue 16 item 3): whatever a decision does —
// appraise, measure (ima-ng or ima-sig), audit, all three, with the
// label's algorithm (sha512) not the measurement's (sha256) — the file's
// content is read once, through one Inspector call where one can do, and
// the measurement and the audit record carry what that call handed back:
// its digest and, for ima-sig, its label. A decision that finds
// everything it needs in the cache reads nothing. (cmd/intactd's
// TestDaemonInspectorReadsOnce counts the bytes the real appraiser reads.)
func TestOneReadPerDecision(t *testing.T) {
	sumOf := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	for _, tc := range []struct {
		name, policy, content string
		exec                  bool
		allow                 bool
		inspects              int // Inspect calls
		measured, audited     bool
		sig                   []byte // the ima-sig record's label
		first                 Need   // the first call's need
	}{
		{name: "appraise", policy: "appraise func=BPRM_CHECK appraise_type=imasig\n", content: "good binary",
			exec: true, allow: true, inspects: 1, first: Need{Appraise: true}},
		{name: "measure", policy: "measure func=BPRM_CHECK\n", content: "some binary",
			exec: true, allow: true, inspects: 1, measured: true, first: Need{Digests: []digest.Algo{digest.SHA256}}},
		{name: "measure ima-sig", policy: "measure func=BPRM_CHECK template=ima-sig\n", content: "some binary",
			exec: true, allow: true, inspects: 1, measured: true, sig: fakeSigLabel,
			first: Need{Label: true, Digests: []digest.Algo{digest.SHA256}}},
		{name: "audit", policy: "audit func=FILE_CHECK\n", content: "a file",
			allow: true, inspects: 1, audited: true, first: Need{Digests: []digest.Algo{digest.SHA256}}},
		{name: "appraise measure audit, sha512 label",
			policy:  "appraise func=BPRM_CHECK appraise_type=imasig\nmeasure func=BPRM_CHECK template=ima-sig\naudit func=BPRM_CHECK\n",
			content: "good binary", exec: true, allow: true, inspects: 1, measured: true, audited: true, sig: fakeSigLabel,
			first: Need{Appraise: true, Label: true, Digests: []digest.Algo{digest.SHA256}}},
		{name: "appraise audit, tampered",
			policy:  "appraise func=FILE_CHECK\naudit func=FILE_CHECK\n",
			content: "tampered", inspects: 1, audited: true,
			first: Need{Appraise: true, Digests: []digest.Algo{digest.SHA256}}},
		// An appraisal that fails before reading (no label) reads no
		// content: the audit's digest is the one read.
		{name: "appraise audit, no label",
			policy:  "appraise func=FILE_CHECK\naudit func=FILE_CHECK\n",
			content: "nolabel file", inspects: 2, audited: true,
			first: Need{Appraise: true, Digests: []digest.Algo{digest.SHA256}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, tc.policy, nil)
			f := h.file(t, "f", tc.content)
			if got := h.src.decide(t, f, tc.exec); got != tc.allow {
				t.Fatalf("allow = %v, want %v", got, tc.allow)
			}
			if n := h.app.reads.Load(); n != 1 {
				t.Errorf("content read %d times for one decision, want 1", n)
			}
			if n := h.app.inspects.Load(); n != int32(tc.inspects) {
				t.Errorf("%d Inspect calls, want %d", n, tc.inspects)
			}
			h.app.mu.Lock()
			needs := slices.Clone(h.app.needs)
			h.app.mu.Unlock()
			if len(needs) == 0 || needs[0].Appraise != tc.first.Appraise || needs[0].Label != tc.first.Label ||
				!slices.Equal(needs[0].Digests, tc.first.Digests) {
				t.Errorf("first need = %+v, want %+v", needs, tc.first)
			}
			ms := h.meas.all()
			if tc.measured {
				if len(ms) != 1 || !bytes.Equal(ms[0].Digest, sumOf(tc.content)) || !bytes.Equal(ms[0].Sig, tc.sig) {
					t.Fatalf("measurements = %+v, want one with the inspection's digest and label", ms)
				}
			} else if len(ms) != 0 {
				t.Errorf("measurements = %+v, want none", ms)
			}
			if tc.audited {
				recs := h.records(t, "audit")
				if len(recs) != 1 || recs[0]["sha256"] != hex.EncodeToString(sumOf(tc.content)) {
					t.Errorf("audit records = %v, want one with the content's sha256", recs)
				}
			}
			// Again, as the other hook where the policy allows: what is
			// cached is not read again.
			before := h.app.reads.Load()
			if got := h.src.decide(t, f, tc.exec); got != tc.allow {
				t.Fatalf("second access: allow = %v", got)
			}
			if n := h.app.reads.Load() - before; n != 0 {
				t.Errorf("second access read the content %d times, want 0 (cached)", n)
			}
		})
	}
}

// TestLaterMeasureReadsOnce: a file appraised at exec (which
// digests it for sha256 only when a measure or audit rule asks) and then
// measured at open is read once at each decision, at most.
func TestLaterMeasureReadsOnce(t *testing.T) {
	h := start(t, "appraise func=BPRM_CHECK\nmeasure func=FILE_CHECK\naudit func=FILE_CHECK\n", nil)
	f := h.file(t, "f", "good binary")
	if !h.src.decide(t, f, true) {
		t.Fatal("denied")
	}
	if n := h.app.reads.Load(); n != 1 {
		t.Fatalf("exec: %d reads, want 1", n)
	}
	if !h.src.decide(t, f, false) {
		t.Fatal("open denied")
	}
	if n := h.app.reads.Load(); n != 2 {
		t.Errorf("exec then open: %d reads, want 2 (one per decision)", n)
	}
	if ms := h.meas.all(); len(ms) != 1 || !bytes.Equal(ms[0].Digest, func() []byte { x := sha256.Sum256([]byte("good binary")); return x[:] }()) {
		t.Errorf("measurements = %+v", ms)
	}
}
