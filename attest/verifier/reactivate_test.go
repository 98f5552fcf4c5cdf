package verifier_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store"
)

// A security failure stops attestation until an operator reactivates the
// agent; reactivation is refused for an agent that is not failed, is
// recorded in the timeline with the operator's note, and attestation
// starts again (and fails again on the next file outside the policy).
func TestReactivate(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, evil, evil2 := filepath.Join(dir, "ok1"), filepath.Join(dir, "evil"), filepath.Join(dir, "evil2")
	a.measure(ok1)
	tv := startVerifier(t, "")
	ctx := context.Background()
	tv.enroll(a, "a1", policyFor(ok1))
	tv.wait("a1", 2*interval+5*time.Second, "trusted", state(store.StateTrusted))
	if _, err := tv.v.Reactivate(ctx, "a1", ""); !errors.Is(err, verifier.ErrNotFailed) {
		t.Errorf("Reactivate of a trusted agent = %v, want ErrNotFailed", err)
	}
	if _, err := tv.v.Reactivate(ctx, "nobody", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Reactivate of an unknown agent = %v, want ErrNotFound", err)
	}
	a.measure(evil)
	failed := tv.wait("a1", 2*interval+5*time.Second, "failed", state(store.StateFailed))
	// Attestation has stopped: no attestation in three intervals.
	time.Sleep(3 * interval) // time under test: three intervals without an attestation
	if got, _ := tv.st.GetAgent(ctx, "a1"); got.Attestations != failed.Attestations || got.State != store.StateFailed {
		t.Fatalf("after a security failure: %d attestations (was %d), state %s", got.Attestations, failed.Attestations, got.State)
	}
	if _, err := tv.v.Reactivate(ctx, "a1", strings.Repeat("x", verifier.MaxNote+1)); !errors.Is(err, verifier.ErrNoteTooLong) {
		t.Errorf("Reactivate with a long note = %v", err)
	}
	got, err := tv.v.Reactivate(ctx, "a1", "evil was the admin's test build")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateEnrolled || !strings.Contains(reasons(got), "evil was the admin's test build") {
		t.Errorf("after Reactivate: %+v", got.Status)
	}
	tv.wait("a1", 2*interval+5*time.Second, "trusted again", state(store.StateTrusted))
	stored, _ := tv.st.GetAgent(ctx, "a1")
	tl, err := tv.v.Timeline(ctx, stored)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	found := false
	for _, n := range tl {
		types = append(types, n.Type)
		if n.Type == verifier.EventReactivated {
			found = n.Previous == store.StateFailed && strings.Contains(strings.Join(n.Reasons, " "), "test build")
		}
	}
	if !found || !strings.Contains(strings.Join(types, " "), "failed reactivated trusted") {
		t.Errorf("timeline %v: want failed, reactivated (with the note, from failed), trusted", types)
	}
	// Reactivation is not an exemption: the next file outside the policy
	// fails the agent again.
	a.measure(evil2)
	got2 := tv.wait("a1", 2*interval+5*time.Second, "failed again", state(store.StateFailed))
	if r := reasons(got2); !strings.Contains(r, evil2) || strings.Contains(r, evil+" ") {
		t.Errorf("reasons after reactivation = %q, want %s only", r, evil2)
	}
}
