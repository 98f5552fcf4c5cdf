// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/bench/fleet/sim"
	"github.com/intactsec/intact/internal/testenv"
)

// TestFleet is the load test in small (CI): 20 simulated agents enrolled
// through the operator API of an in-process verifier (SQLite store)
// become trusted, are attested at the interval while their lists grow,
// and one that measures a file outside the policy fails naming it.
func TestFleet(t *testing.T) {
	const n = 20
	interval := 200 * time.Millisecond
	tg, err := startInProcess(t.TempDir(), interval, slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer tg.stop()
	f := sim.New(sim.Options{InitialRecords: 5, GrowEvery: 300 * time.Millisecond})
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tg.call(ctx, "PUT", "/v1/policies/fleet", sim.Policy("fleet"), 200, nil); err != nil {
		t.Fatal(err)
	}
	agents, err := f.Add("ci", n)
	if err != nil {
		t.Fatal(err)
	}
	if err := allowEKs(tg.state, agents); err != nil {
		t.Fatal(err)
	}
	if err := enroll(ctx, tg, agents, 4); err != nil {
		t.Fatal(err)
	}
	if err := settle(ctx, tg, n, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// Settled means trusted, which enrollment's own client can make an
	// agent before the attestation loop first connects to it: wait
	// (up to 30 s) for a round of intervals with quotes and no new
	// connection, so the check below counts only connections made while
	// attesting. Without keep-alive every quote connects anew, no such
	// round comes, and the check below fails as before.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		qa, _, ca := f.Counts()
		time.Sleep(5 * interval) // time under test: a window of five intervals, with quotes and no new connection
		if qb, _, cb := f.Counts(); cb == ca && qb > qa {
			break
		}
	}
	f.TakeGaps()
	q0, r0, c0 := f.Counts()
	time.Sleep(2 * time.Second) // time under test: the quotes of 2 s
	q1, r1, c1 := f.Counts()
	// 20 agents every 200 ms for 2 s: 200 quotes; allow for a slow CI box.
	if q := q1 - q0; q < 100 {
		t.Errorf("%d quotes in 2s, want about 200", q)
	}
	if c1 != c0 {
		t.Errorf("%d new connections while attesting: the verifier does not keep them alive", c1-c0)
	}
	if r1 <= r0 {
		t.Errorf("the lists did not grow (%d, %d records appended)", r0, r1)
	}
	if gaps := f.TakeGaps(); len(gaps) == 0 {
		t.Error("no gaps between quotes recorded")
	}
	// Every agent trusted, with the grown records verified.
	var views []verifier.AgentView
	if err := tg.call(ctx, "GET", "/v1/agents", nil, 200, &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != n {
		t.Fatalf("%d agents listed", len(views))
	}
	for _, v := range views {
		if v.State != "trusted" || v.LogOffset <= 6 || v.Attestations < 5 {
			t.Errorf("%s: %s %v, offset %d, %d attestations", v.ID, v.State, v.Reasons, v.LogOffset, v.Attestations)
		}
	}

	// A file outside the policy: that agent fails, by name; the others
	// stay trusted.
	bad := agents[3]
	sum := sha256.Sum256([]byte("not in the policy"))
	if err := bad.Log.Append("/usr/bin/intruder", sum[:]); err != nil {
		t.Fatal(err)
	}
	var v verifier.AgentView
	if !testenv.Until(10*time.Second, func() bool {
		if err := tg.call(ctx, "GET", "/v1/agents/"+bad.ID, nil, 200, &v); err != nil {
			t.Fatal(err)
		}
		return v.State == "failed"
	}) {
		t.Fatalf("the agent with a file outside the policy is still %s", v.State)
	}
	if !strings.Contains(strings.Join(v.Reasons, "\n"), "/usr/bin/intruder") {
		t.Errorf("reasons do not name the file: %v", v.Reasons)
	}
	st, err := agentStates(ctx, tg)
	if err != nil {
		t.Fatal(err)
	}
	if st["trusted"] != n-1 || st["failed"] != 1 {
		t.Errorf("states %v, want %d trusted and 1 failed", st, n-1)
	}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}
