// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store"
)

func timelineTypes(t *testing.T, tv *testVerifier, a *store.Agent) []string {
	t.Helper()
	tl, err := tv.v.Timeline(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, n := range tl {
		types = append(types, n.Type)
	}
	return types
}

// inOrder reports whether want is a subsequence of got.
func inOrder(got, want []string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// Offline, then reboot: the agent stops answering, a file outside the
// policy runs, the TPM is reset and a fresh list starts, the agent comes
// back. Its new boot verifies, but it is not trusted: it is in the
// gap-after-reboot state (EAR warning, the reboot and the gap on its
// timeline) until an operator acknowledges the gap; then it is trusted.
// On the old code it was trusted again at once, only "reboot" on its
// timeline. The same when, instead of not answering (unreachable), the
// agent answers an error (failed, operational).
func TestGapAfterReboot(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		testGapAfterReboot(t, store.StateUnreachable, verifier.EventUnreachable)
	})
	t.Run("answers 503", func(t *testing.T) {
		testGapAfterReboot(t, store.StateFailed, verifier.EventFailed)
	})
}

func testGapAfterReboot(t *testing.T, outage, outageEvent string) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, evil := filepath.Join(dir, "ok1"), filepath.Join(dir, "evil")
	a.measure(ok1)
	tv := startVerifier(t, "")
	ctx := context.Background()
	tv.enroll(a, "g", policyFor(ok1))
	tv.wait("g", 10*time.Second, "trusted", state(store.StateTrusted))
	if err := tv.v.Acknowledge(ctx, "g"); !errors.Is(err, verifier.ErrNoGap) {
		t.Fatalf("Acknowledge without a gap: %v, want ErrNoGap", err)
	}

	if outage == store.StateUnreachable {
		// The agent is killed: the verifier cannot reach it.
		a.down()
		tv.wait("g", 10*time.Second, "unreachable", func(x *store.Agent) bool {
			return x.State == store.StateUnreachable && x.Kind == ""
		})
	} else {
		// The agent answers an error.
		a.setTamper(func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		})
		tv.wait("g", 10*time.Second, "failed (operational)", func(x *store.Agent) bool {
			return x.State == store.StateFailed && x.Kind == store.KindOperational
		})
	}
	a.measure(evil)
	a.reboot()
	a.setTamper(nil)
	a.up()

	got := tv.wait("g", 10*time.Second, store.StateGap, state(store.StateGap))
	if got.Gap == nil || got.Kind != "" || len(got.Reasons) != 1 || !strings.HasPrefix(got.Reasons[0], verifier.ReasonGap+":") ||
		got.Progress.LogOffset != 2 || !got.Progress.BootChecked {
		t.Fatalf("after the reboot: %+v", got)
	}
	t.Logf("state %s: %s", got.State, got.Reasons[0])
	if types := timelineTypes(t, tv, got); !inOrder(types, []string{verifier.EventTrusted, outageEvent, verifier.EventReboot, verifier.EventGap}) {
		t.Fatalf("timeline %v: want trusted, %s, reboot, gap-after-reboot", types, outageEvent)
	}
	ap := tv.v.EAR(got, time.Now()).Submods["g"]
	if ap.Status != ear.StatusWarning || ap.Reason != verifier.ReasonGap {
		t.Fatalf("EAR appraisal %+v: want warning, %s", ap, verifier.ReasonGap)
	}
	// Good attestations do not clear it.
	n := got.Attestations
	got = tv.wait("g", 10*time.Second, "attested twice more", func(x *store.Agent) bool { return x.Attestations >= n+2 })
	if got.State != store.StateGap {
		t.Fatalf("gap cleared without an acknowledgement: %+v", got)
	}
	// Nor does a restart of the verifier.
	tv.stop()
	tv = startVerifier(t, tv.db)
	got = tv.wait("g", 10*time.Second, "attested after the restart", func(x *store.Agent) bool { return x.Attestations >= n+3 })
	if got.State != store.StateGap || got.Gap == nil {
		t.Fatalf("after a restart: %+v", got)
	}

	// The operator acknowledges: trusted again.
	if err := tv.v.Acknowledge(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	got = tv.wait("g", 10*time.Second, "trusted", state(store.StateTrusted))
	if got.Gap != nil {
		t.Fatalf("gap kept after the acknowledgement: %+v", got)
	}
	if types := timelineTypes(t, tv, got); !inOrder(types, []string{verifier.EventGap, verifier.EventAcknowledged, verifier.EventTrusted}) {
		t.Fatalf("timeline %v: want gap-after-reboot, acknowledged, trusted", types)
	}
	if ap := tv.v.EAR(got, time.Now()).Submods["g"]; ap.Status != ear.StatusAffirming {
		t.Fatalf("EAR after the acknowledgement: %+v", ap)
	}
	if err := tv.v.Acknowledge(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Acknowledge(unknown) = %v", err)
	}
}
