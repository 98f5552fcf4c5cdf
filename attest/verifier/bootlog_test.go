// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"crypto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/tpm"
)

// boot extends a real firmware event log's PCR 0-9 events into the swtpm,
// as firmware would during boot.
func boot(t *testing.T, sw *tpmtest.Swtpm, logPath string) {
	t.Helper()
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	e1, err := l.UnverifiedEvents(digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	e256, err := l.UnverifiedEvents(digest.SHA256)
	if err != nil || len(e1) != len(e256) {
		t.Fatalf("log banks differ: %d sha1, %d sha256 events (%v)", len(e1), len(e256), err)
	}
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	banks, err := tp.Banks()
	if err != nil {
		t.Fatal(err)
	}
	for i := range e1 {
		if e1[i].PCR > 9 || e1[i].Type == 3 { // EV_NO_ACTION is not extended
			continue
		}
		d := map[crypto.Hash][]byte{crypto.SHA1: e1[i].Digest, crypto.SHA256: e256[i].Digest}
		for _, b := range banks {
			if d[b.Hash] == nil {
				d[b.Hash] = make([]byte, b.Hash.Size()) // a bank the log lacks: not checked
			}
		}
		if err := tp.ExtendPCR(e1[i].PCR, d); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBootLog(t *testing.T) {
	logPath := testenv.Testdata(t, "tcg-eventlogs/ubuntu-2104-no-secure-boot.bin")
	for _, tc := range []struct {
		name   string
		served string
		want   string
	}{
		{"verified", logPath, store.StateTrusted},
		{"another machine's log", testenv.Testdata(t, "tcg-eventlogs/rhel8-uefi.bin"), store.StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := tpmtest.Start(t, tpmtest.Options{})
			boot(t, sw, logPath)
			a := newTestAgentWithBootLog(t, sw, tc.served)
			tv := startVerifier(t, "")
			tv.enroll(a, "b", policyFor())
			got := tv.wait("b", 10*time.Second, tc.want, state(tc.want))
			switch tc.want {
			case store.StateTrusted:
				if got.Progress.BootLog != store.BootLogVerified || !got.Progress.BootChecked {
					t.Fatalf("progress %+v: boot log not verified", got.Progress)
				}
			default:
				if !strings.HasPrefix(reasons(got), verifier.ReasonBootLog+":") {
					t.Fatalf("failed with %q, want %s", reasons(got), verifier.ReasonBootLog)
				}
				t.Logf("reason: %s", reasons(got))
			}
		})
	}
}
