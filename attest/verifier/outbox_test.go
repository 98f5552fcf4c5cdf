// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/storetest"
)

// Must-show (issue 12): a store that fails writes for a while loses no
// event. The store fails an enrollment and a removal (refused whole:
// no agent change, no event), then every write while the agent becomes
// trusted, and again while it fails (the batches carrying those state
// changes and the delivery marks fail, repeatedly); once it recovers,
// the receiver gets every event once, in order: enrolled, trusted,
// failed, removed. On the old writer the batch with the trusted event
// was dropped (and a failed delivery mark sent an event again).
func TestOutboxSurvivesFailingStore(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, evil := filepath.Join(dir, "ok1"), filepath.Join(dir, "evil")
	a.measure(ok1)
	rc := &hookReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var flaky *storetest.Flaky
	tv := startVerifierWith(t, "", func(o *verifier.Options) {
		flaky = storetest.NewFlaky(o.Store)
		o.Store = flaky
		o.Webhooks = []webhook.Receiver{{URL: srv.URL + "/hook", Secret: hookSecret, AllowHTTP: true}}
		o.WebhookBase, o.WebhookMax = 20*time.Millisecond, 100*time.Millisecond
	})
	tv.allow(a)
	ctx := context.Background()
	if _, err := tv.v.PutPolicy(ctx, "p", policyFor(ok1)); err != nil {
		t.Fatal(err)
	}

	// An enrollment the store fails is refused whole.
	flaky.FailNext(1)
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "a1", Addr: a.addr(), Policy: "p"}); !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("Enroll with a failing store: %v", err)
	}
	if _, err := tv.st.GetAgent(ctx, "a1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent stored although its enrollment failed: %v", err)
	}
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "a1", Addr: a.addr(), Policy: "p"}); err != nil {
		t.Fatal(err)
	}

	// failUntilRefused fails every write until the store has refused an
	// event of type typ at least twice, then lets writes through.
	failUntilRefused := func(typ string) {
		t.Helper()
		flaky.FailNext(1 << 30)
		testenv.WaitFor(t, 2*interval+20*time.Second, "the store to refuse a "+typ+" event twice", func() bool {
			n := 0
			for _, e := range flaky.Refused() {
				if e.Type == typ {
					n++
				}
			}
			return n >= 2
		})
		flaky.FailNext(0)
	}
	failUntilRefused(verifier.EventTrusted)
	tv.wait("a1", 20*time.Second, "trusted", state(store.StateTrusted))
	a.measure(evil)
	failUntilRefused(verifier.EventFailed)
	tv.wait("a1", 20*time.Second, "failed", state(store.StateFailed))

	// A removal the store fails removes nothing.
	flaky.FailNext(1)
	if err := tv.v.Remove(ctx, "a1"); !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("Remove with a failing store: %v", err)
	}
	if _, err := tv.st.GetAgent(ctx, "a1"); err != nil {
		t.Fatalf("agent gone although its removal failed: %v", err)
	}
	if err := tv.v.Remove(ctx, "a1"); err != nil {
		t.Fatal(err)
	}

	rc.waitFor(t, 4, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // time under test: nothing more comes in the next 300 ms
	_, got, ids, bad := rc.snapshot()
	if len(bad) > 0 {
		t.Fatalf("bad deliveries: %v", bad)
	}
	var types []string
	seen := map[string]bool{}
	for i, n := range got {
		types = append(types, n.Type)
		if seen[n.ID] || n.ID != ids[i] {
			t.Errorf("delivery %d: id %s (header %s) seen before: %v", i, n.ID, ids[i], seen[n.ID])
		}
		seen[n.ID] = true
	}
	want := []string{verifier.EventEnrolled, verifier.EventTrusted, verifier.EventFailed, verifier.EventRemoved}
	if !slices.Equal(types, want) {
		t.Fatalf("receiver got %v, want %v once each", types, want)
	}
	total, byOp := flaky.Injected()
	if byOp["SaveAttestations"] < 4 || byOp["CreateAgent"] != 1 || byOp["DeleteAgent"] != 1 {
		t.Errorf("injected failures %d %v: want the state changes' batches, an enrollment and a removal to have failed", total, byOp)
	}
	t.Logf("injected failures: %d %v", total, byOp)
}
