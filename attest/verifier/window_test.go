// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/tpm"
)

// fakeClock is the verifier's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// install writes content to path and measures it, as running a file that
// a package upgrade replaced does.
func (a *testAgent) install(path, content string) {
	a.t.Helper()
	a.withTPM(func(tp *tpm.TPM) {
		m, err := agent.OpenMeasurer(tp, a.list, logPCR)
		if err != nil {
			a.t.Fatal(err)
		}
		defer m.Close()
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			a.t.Fatal(err)
		}
		if err := m.MeasureFile(path); err != nil {
			a.t.Fatal(err)
		}
	})
}

func digestsOf(files map[string]string) map[string][]string {
	out := map[string][]string{}
	for p, content := range files {
		d := sha256.Sum256([]byte(content))
		out[p] = []string{"sha256:" + hex.EncodeToString(d[:])}
	}
	return out
}

// A package upgrade inside an update window keeps the agent trusted; the
// same upgrade after the window ended (judged with the verifier's clock)
// fails it. The window arrives as a policy update while the verifier runs
// and the agents are attested: no restart.
func TestUpdateWindow(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "usr-bin-tool")
	oldPkg := map[string]string{tool: "tool 1.0"}
	newPkg := map[string]string{tool: "tool 2.0"}
	oldPolicy := rtpolicy.Policy{Format: 1, Name: "fleet", Release: 1, Digests: digestsOf(oldPkg)}
	newPolicy := rtpolicy.Policy{Format: 1, Name: "fleet", Release: 2, Digests: digestsOf(newPkg)}

	clock := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	early := newTestAgent(t, nil) // upgrades inside the window
	late := newTestAgent(t, nil)  // upgrades after it
	early.install(tool, oldPkg[tool])
	late.install(tool, oldPkg[tool])
	tv := startVerifierClock(t, "", clock.Now)
	ctx := context.Background()
	doc, _ := json.Marshal(oldPolicy)
	if _, err := tv.v.PutPolicy(ctx, "fleet", doc); err != nil {
		t.Fatal(err)
	}
	for id, a := range map[string]*testAgent{"early": early, "late": late} {
		tv.allow(a)
		if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: id, Addr: a.addr(), Policy: "fleet"}); err != nil {
			t.Fatal(err)
		}
		tv.wait(id, 10*time.Second, "trusted", state(store.StateTrusted))
	}

	// The operator opens a one-hour window for the upgrade's digests (the
	// old policy still in force) and puts it into the running verifier.
	windowed := rtpolicy.AddWindow(oldPolicy, newPolicy, clock.Now().Add(time.Hour), clock.Now(), "tool 2.0 rollout")
	doc, _ = json.Marshal(windowed)
	if _, err := tv.v.PutPolicy(ctx, "fleet", doc); err != nil {
		t.Fatal(err)
	}

	// Inside the window: the upgraded tool runs on "early".
	clock.advance(30 * time.Minute)
	early.install(tool, newPkg[tool])
	got := tv.wait("early", 10*time.Second, "attested past the upgrade", func(a *store.Agent) bool {
		return a.Progress.LogOffset == 4 || a.State != store.StateTrusted
	})
	if got.State != store.StateTrusted {
		t.Fatalf("upgrade inside the window: %s (%s), want trusted", got.State, reasons(got))
	}
	before := got.Attestations
	tv.wait("early", 10*time.Second, "attested again", func(a *store.Agent) bool { return a.Attestations >= before+2 })

	// After the window: the same upgrade on "late" fails it.
	clock.advance(31 * time.Minute)
	late.install(tool, newPkg[tool])
	got = tv.wait("late", 10*time.Second, "failed", state(store.StateFailed))
	if r := reasons(got); got.Kind != store.KindSecurity || !strings.Contains(r, tool) || !strings.Contains(r, rtpolicy.DigestMismatch) {
		t.Errorf("late upgrade: %q (%s), want %s %s", r, got.Kind, tool, rtpolicy.DigestMismatch)
	}
	// "early" ran the upgraded tool inside the window and stays trusted
	// (its records were judged then).
	if a, err := tv.st.GetAgent(ctx, "early"); err != nil || a.State != store.StateTrusted {
		t.Errorf("early after the window: %+v, %v", a, err)
	}
	t.Logf("late: %s", reasons(got))
}
