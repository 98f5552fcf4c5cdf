// SPDX-License-Identifier: Apache-2.0

//go:build shareddata

package rtpolicy_test

// The extra run (go test -tags shareddata): over the Raspberry Pi list in
// ../shared/testdata, a GPL-2.0 project's data that stays out of this
// repository (testdata/README.md).

import (
	"testing"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/rtpolicy"
)

// A policy generated from a real measurement list accepts every record of
// that list (and only the digests it saw).
func TestSharedFromLogRealList(t *testing.T) {
	l, err := mlog.ReadFile(testenv.Shared(t, "ima-logs/rpi-ima-ng.bin"), mlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, rep, err := rtpolicy.FromLog(l, "rpi")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rtpolicy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files < 100 || rep.Skipped != 0 {
		t.Errorf("report %+v", rep)
	}
	for i, r := range l.UnverifiedRecords() {
		if f := c.Evaluate(int64(i), &r); f != nil && !r.Violation() {
			t.Errorf("record %d: %v", i, f)
		}
	}
	// Another digest for a listed path fails.
	other := rtpolicy.Policy{Format: 1, Digests: map[string][]string{}}
	for path := range p.Digests {
		other.Digests[path] = []string{hexSum("something else")}
	}
	oc, _ := rtpolicy.Compile(other)
	fails := 0
	for i, r := range l.UnverifiedRecords() {
		if f := oc.Evaluate(int64(i), &r); f != nil && f.Reason == rtpolicy.DigestMismatch {
			fails++
		}
	}
	if fails < rep.Files {
		t.Errorf("%d mismatches with other digests, want at least %d", fails, rep.Files)
	}
}
