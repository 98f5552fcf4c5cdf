package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store"
)

// agents show prints the last attestation and count, and the history
// with its heartbeats told apart from changes.
func TestPrintShow(t *testing.T) {
	at := time.Date(2026, 11, 28, 0, 30, 0, 0, time.UTC)
	trusted := at.Add(-2 * time.Hour)
	v := &verifier.AgentView{ID: "web1", State: store.StateFailed, Attestations: 5400, LastAttested: &at, LastTrusted: &trusted,
		LogSource: "intact", LogPCR: 13, LogOffset: 812, CertSHA256: "ab",
		History: []store.Result{
			{Time: at, State: store.StateFailed, Kind: store.KindSecurity, Reasons: []string{"policy: /tmp/evil: not-in-policy (record 812, sha256:00)"}, Attestations: 5400, LogOffset: 812},
			{Time: at.Add(-time.Hour), State: store.StateTrusted, Heartbeat: true, Attestations: 3600, LogOffset: 700},
			{Time: at.Add(-3 * time.Hour), State: store.StateTrusted, Attestations: 1, LogOffset: 21},
		}}
	var b bytes.Buffer
	printShow(&b, v)
	for _, want := range []string{
		"attestations: 5400, the last at 2026-11-28T00:30:00Z\n",
		"last trusted: 2026-11-27T22:30:00Z\n",
		"list:         intact, pcr 13, 812 records verified\n",
		"  2026-11-28T00:30:00Z  failed (security) (attestation 5400, 812 records)\n      policy: /tmp/evil: not-in-policy (record 812, sha256:00)\n",
		"  2026-11-27T23:30:00Z  trusted, unchanged (attestation 3600, 700 records)\n",
		"  2026-11-27T21:30:00Z  trusted (attestation 1, 21 records)\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("agents show lacks %q:\n%s", want, b.String())
		}
	}
}
