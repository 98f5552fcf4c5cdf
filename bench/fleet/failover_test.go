// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/bench/fleet/sim"
	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/internal/testenv"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// receiverOwner is the replica holding the webhook receiver's delivery
// lease (read from the database).
func receiverOwner(t *testing.T, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var owner string
	if err := c.QueryRow(ctx, `SELECT owner FROM receivers`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	return owner
}

// receiver records webhook deliveries by event id.
type receiver struct {
	mu     sync.Mutex
	byID   map[string]verifier.Notification
	copies int // deliveries of an id already received (at least once: allowed, deduplicated by id)
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var n verifier.Notification
	if err := json.Unmarshal(b, &n); err != nil || n.ID == "" {
		http.Error(w, "bad body", 400)
		return
	}
	r.mu.Lock()
	if _, ok := r.byID[n.ID]; ok {
		r.copies++
	}
	r.byID[n.ID] = n
	r.mu.Unlock()
}

func (r *receiver) events(agent, typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.byID {
		if e.Agent == agent && e.Type == typ {
			n++
		}
	}
	return n
}

// Two replicas on one PostgreSQL database share 200 simulated agents;
// one is killed (SIGKILL) mid-run: the other attests every agent again
// within two intervals, the agents that ran a file outside the policy
// meanwhile fail once each (one event each in the outbox, checked by a
// webhook receiver), and the killed replica, restarted, takes back a share.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 200
	const interval = 2 * time.Second
	dsn := pgtest.NewDB(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "intact-verifier")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/intact-verifier").CombinedOutput(); err != nil {
		t.Fatalf("building intact-verifier: %v\n%s", err, out)
	}
	dsnFile := filepath.Join(dir, "dsn")
	os.WriteFile(dsnFile, []byte(dsn), 0o600)
	secret := filepath.Join(dir, "hook-secret")
	os.WriteFile(secret, []byte("failover-webhook-secret-0123"), 0o600)
	rec := &receiver{byID: map[string]verifier.Notification{}}
	hook := httptest.NewServer(rec)
	defer hook.Close()

	f := sim.New(sim.Options{InitialRecords: 5, GrowEvery: -1})
	defer f.Close()
	agents, err := f.Add("fo", n)
	if err != nil {
		t.Fatal(err)
	}
	logw := &testWriter{t}
	start := func(name string) *target {
		t.Helper()
		state := filepath.Join(dir, name)
		os.MkdirAll(state, 0o700)
		// The replicas share r1's verifier.crt/verifier.key: the agents
		// pin the certificate of the verifier that enrolled them and
		// refuse any other at the handshake (docs/attestation.md).
		if name != "r1" {
			for _, f := range []string{"verifier.crt", "verifier.key"} {
				if _, err := os.Stat(filepath.Join(state, f)); err == nil {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, "r1", f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(state, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := os.Stat(ekAllowPath(state)); err != nil {
			os.WriteFile(ekAllowPath(state), nil, 0o644)
			if err := allowEKs(state, agents); err != nil {
				t.Fatal(err)
			}
		}
		tg, err := startBinary(bin, state, interval, logw, "--db-file", dsnFile, "--replica", name,
			"--webhook", hook.URL+"/hook", "--webhook-secret", secret, "--webhook-allow-http", "--webhook-max-backoff", "1s")
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	r1 := start("r1")
	r2 := start("r2")
	defer func() { r2.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r1.call(ctx, "PUT", "/v1/policies/fleet", sim.Policy("fleet"), 200, nil); err != nil {
		t.Fatal(err)
	}
	if err := enroll(ctx, r1, agents, 4); err != nil {
		t.Fatal(err)
	}
	if err := settle(ctx, r2, n, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	views := func(tg *target) map[string]verifier.AgentView {
		t.Helper()
		var vs []verifier.AgentView
		if err := tg.call(ctx, "GET", "/v1/agents", nil, 200, &vs); err != nil {
			t.Fatal(err)
		}
		m := map[string]verifier.AgentView{}
		for _, v := range vs {
			m[v.ID] = v
		}
		return m
	}
	held := func(vs map[string]verifier.AgentView) map[string]int {
		c := map[string]int{}
		for _, v := range vs {
			if v.LeaseUntil != nil && v.LeaseUntil.After(time.Now()) {
				c[v.Replica]++
			}
		}
		return c
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) time.Duration {
		t.Helper()
		t0 := time.Now()
		if !testenv.Until(limit, cond) {
			t.Fatalf("%s: not after %v", what, limit)
		}
		return time.Since(t0)
	}
	waitFor("both replicas holding leases", 30*time.Second, func() bool {
		c := held(views(r2))
		return c["r1"] > 0 && c["r2"] > 0 && c["r1"]+c["r2"] == n
	})
	before := views(r2)
	t.Logf("before the kill: leases %v", held(before))
	var victims []*sim.Agent
	for _, a := range agents {
		if before[a.ID].Replica == "r1" && len(victims) < 5 {
			victims = append(victims, a)
		}
	}

	// r1 started first: its deliverer holds the receiver's delivery
	// lease, so the kill below kills the delivering replica.
	if owner := receiverOwner(t, dsn); owner != "r1" {
		t.Fatalf("the webhook receiver's delivery lease is held by %q, want r1 (started first)", owner)
	}
	r1.kill()
	killed := time.Now()
	sum := sha256.Sum256([]byte("dropped while r1 was down"))
	for _, a := range victims {
		if err := a.Log.Append("/usr/local/bin/dropper", sum[:]); err != nil {
			t.Fatal(err)
		}
	}
	// every agent attested again (by r2) after the kill
	took := waitFor("every agent attested again", 10*interval, func() bool {
		for _, v := range views(r2) {
			if v.LastAttested == nil || !v.LastAttested.After(killed) {
				return false
			}
		}
		return true
	})
	t.Logf("every agent attested again %v after the kill (interval %v)", took.Round(time.Millisecond), interval)
	if took > 2*interval+time.Second {
		t.Errorf("agents attested again %v after the kill, want within two intervals (%v)", took, 2*interval)
	}
	after := views(r2)
	if c := held(after); c["r2"] != n {
		t.Errorf("after the kill r2 holds %v", c)
	}
	// r2 takes over the deliveries when r1's delivery lease lapses
	// (webhook.DefaultDeliveryLeaseTTL, 15 s) and its next poll
	waitFor("the tampered agents failed, their events delivered", 60*time.Second, func() bool {
		vs := views(r2)
		for _, a := range victims {
			if vs[a.ID].State != "failed" || rec.events(a.ID, verifier.EventFailed) == 0 {
				return false
			}
		}
		return true
	})
	// The restarted replica takes back a share, without an operator.
	r1 = start("r1")
	defer func() { r1.stop() }()
	waitFor("r1 back with a share", 30*time.Second, func() bool {
		c := held(views(r1))
		return c["r1"] > 0 && c["r2"] > 0
	})
	// let the handover settle for two intervals, then count the events
	time.Sleep(2 * interval) // time under test: no event may appear late
	for _, a := range agents {
		want := 0
		for _, v := range victims {
			if v == a {
				want = 1
			}
		}
		if got := rec.events(a.ID, verifier.EventFailed); got != want {
			t.Errorf("%s: %d failed events, want %d", a.ID, got, want)
		}
		if got := rec.events(a.ID, verifier.EventTrusted); got != 1 {
			t.Errorf("%s: %d trusted events, want 1", a.ID, got)
		}
	}
	final := views(r1)
	rec.mu.Lock()
	copies := rec.copies
	rec.mu.Unlock()
	t.Logf("after the restart: leases %v; %d redundant deliveries; deliveries by %s now", held(final), copies, receiverOwner(t, dsn))
	// One replica delivers at a time: the only event a receiver may get
	// twice is one in flight when the delivering replica was killed.
	if copies > 1 {
		t.Errorf("%d events delivered more than once, want at most the one in flight at the kill", copies)
	}
	for _, v := range final {
		if v.State == "failed" && v.Kind == "security" {
			continue
		}
		if v.State != "trusted" {
			t.Errorf("%s: %s %v", v.ID, v.State, v.Reasons)
		}
	}
}
