// SPDX-License-Identifier: Apache-2.0

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

// Agent-supplied strings cannot forge output: a measured path with a
// newline, a tab and escape codes (it reaches the reasons of a policy
// failure) prints escaped on its own line in agents show and in the
// agents list table.
func TestShowEscapesAgentStrings(t *testing.T) {
	evil := "/tmp/x\nstate:        trusted\x1b[2K\x1b[1A\r\u202e\tZ"
	reason := "policy: " + evil + ": not-in-policy (record 9, sha256:00)"
	at := time.Date(2026, 11, 28, 0, 30, 0, 0, time.UTC)
	v := &verifier.AgentView{ID: "web1", Addr: "10.0.0.1:9443", Policy: "p", State: store.StateFailed, Kind: store.KindSecurity,
		Reasons: []string{reason}, LogSource: "intact\x1b[31m", LastAttested: &at,
		History:  []store.Result{{Time: at, State: store.StateFailed, Kind: store.KindSecurity, Reasons: []string{reason}}},
		Timeline: []verifier.Notification{{Type: verifier.EventFailed, Time: at, Previous: "trusted\n", State: store.StateFailed, Reasons: []string{reason}}}}
	var b bytes.Buffer
	printAgent(&b, v)
	var l bytes.Buffer
	if err := printAgents(&l, []verifier.AgentView{*v}); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"agents show": b.String(), "agents list": l.String()} {
		if strings.ContainsAny(out, "\x1b\r\t\u202e") {
			t.Errorf("%s prints a control character:\n%q", name, out)
		}
		states := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "state:") {
				states++
			}
		}
		if name == "agents show" && states != 1 {
			t.Errorf("%s: %d lines start with state:, want 1:\n%s", name, states, out)
		}
		if !strings.Contains(out, `"policy: /tmp/x\nstate:        trusted\x1b[2K\x1b[1A\r\u202e\tZ: not-in-policy (record 9, sha256:00)"`) {
			t.Errorf("%s lacks the escaped reason:\n%s", name, out)
		}
	}
	if n := strings.Count(l.String(), "\n"); n != 2 {
		t.Errorf("agents list: %d lines, want a header and one row:\n%s", n, l.String())
	}
	for in, want := range map[string]string{"web1": "web1", "/usr/bin/ls": "/usr/bin/ls", "/x y/é": "/x y/é", `a"b`: `"a\"b"`, "\xff": `"\xff"`} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %s, want %s", in, got, want)
		}
	}
}
