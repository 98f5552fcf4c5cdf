// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
)

var hookSecret = []byte("webhook-secret-for-tests")

// hookReceiver is a webhook endpoint that answers 503 while down and
// records every delivery, checking its signature.
type hookReceiver struct {
	mu       sync.Mutex
	down     bool
	refused  int
	received []verifier.Notification
	headers  []string // X-Intact-Event of each delivery
	bad      []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down || err != nil {
		h.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify(hookSecret, r.Header.Get(webhook.HeaderEvent), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, time.Now(), time.Minute); err != nil {
		h.bad = append(h.bad, "signature: "+err.Error())
	}
	var n verifier.Notification
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		h.bad = append(h.bad, "body: "+err.Error())
	}
	h.received = append(h.received, n)
	h.headers = append(h.headers, r.Header.Get(webhook.HeaderEvent))
}

func (h *hookReceiver) setDown(d bool) {
	h.mu.Lock()
	h.down = d
	h.mu.Unlock()
}

func (h *hookReceiver) snapshot() (refused int, got []verifier.Notification, ids, bad []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused, slices.Clone(h.received), slices.Clone(h.headers), slices.Clone(h.bad)
}

func (h *hookReceiver) waitFor(t *testing.T, n int, d time.Duration) []verifier.Notification {
	t.Helper()
	var got []verifier.Notification
	if !testenv.Until(d, func() bool { _, got, _, _ = h.snapshot(); return len(got) >= n }) {
		t.Fatalf("after %v the receiver has %d deliveries, want %d: %+v", d, len(got), n, got)
	}
	return got
}

func serveOn(t *testing.T, addr string, h http.Handler) *http.Server {
	t.Helper()
	var ln net.Listener
	var err error
	testenv.Until(5*time.Second, func() bool { // the port was ours a moment ago
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Must-show (issue 8): a webhook receiver that was down for a while
// receives every state change once it comes back. The receiver refuses
// (503) while the agent is enrolled, trusted and fails; the verifier is
// restarted with the events undelivered while the receiver does not even
// listen; then it comes back and receives each event once, in order,
// with valid signatures and signed EARs.
func TestWebhookReceiverDownThenBack(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, evil := filepath.Join(dir, "ok1"), filepath.Join(dir, "evil")
	a.measure(ok1)

	rc := &hookReceiver{down: true}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: rc}
	go srv.Serve(ln)
	url := "http://" + addr + "/hook"

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	opts := func(o *verifier.Options) {
		o.EARKey = key
		o.Webhooks = []webhook.Receiver{{URL: url, Secret: hookSecret, AllowHTTP: true}}
		o.WebhookBase, o.WebhookMax = 20*time.Millisecond, 200*time.Millisecond
	}
	db := filepath.Join(t.TempDir(), "verifier.db")
	tv := startVerifierWith(t, db, opts)
	tv.enroll(a, "a1", policyFor(ok1))
	tv.wait("a1", 2*interval+5*time.Second, "trusted", state(store.StateTrusted))
	a.measure(evil)
	tv.wait("a1", 2*interval+5*time.Second, "failed", state(store.StateFailed))
	// The state and its event are stored in one transaction.
	pending, err := tv.st.Undelivered(context.Background(), url, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range pending {
		types = append(types, e.Type)
	}
	if !slices.Equal(types, []string{verifier.EventEnrolled, verifier.EventTrusted, verifier.EventFailed}) {
		t.Fatalf("outbox before the restart: %v", types)
	}
	// A few refused attempts (waited for: a fixed 300 ms was not always
	// two attempts on a loaded machine).
	testenv.Until(20*time.Second, func() bool { refused, _, _, _ := rc.snapshot(); return refused >= 2 })
	if refused, got, _, _ := rc.snapshot(); refused < 2 || len(got) != 0 {
		t.Fatalf("receiver down: %d refused, %d delivered; want retries and nothing delivered", refused, len(got))
	}

	// Restart the verifier while the receiver is not even listening.
	tv.stop()
	srv.Close()
	tv = startVerifierWith(t, db, opts)
	time.Sleep(300 * time.Millisecond) // time under test: it retries against a closed port, delivering nothing
	if _, got, _, _ := rc.snapshot(); len(got) != 0 {
		t.Fatalf("delivered while not listening: %+v", got)
	}

	// The receiver comes back.
	rc.setDown(false)
	serveOn(t, addr, rc)
	rc.waitFor(t, 3, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // time under test: nothing more comes in the next 500 ms
	_, got, ids, bad := rc.snapshot()
	if len(bad) > 0 {
		t.Fatalf("bad deliveries: %v", bad)
	}
	if len(got) != 3 {
		t.Fatalf("%d deliveries, want 3 (once each): %+v", len(got), got)
	}
	seen := map[string]bool{}
	for i, n := range got {
		if seen[n.ID] || n.ID != ids[i] || n.ID != pending[i].ID {
			t.Fatalf("delivery %d: id %s (header %s, outbox %s), seen before %v", i, n.ID, ids[i], pending[i].ID, seen[n.ID])
		}
		seen[n.ID] = true
		if i > 0 && n.Time.Before(got[i-1].Time) {
			t.Errorf("delivery %d earlier than the one before", i)
		}
	}
	want := []struct{ typ, state, prev string }{
		{verifier.EventEnrolled, store.StateEnrolled, ""},
		{verifier.EventTrusted, store.StateTrusted, store.StateEnrolled},
		{verifier.EventFailed, store.StateFailed, store.StateTrusted},
	}
	statuses := []ear.Status{ear.StatusNone, ear.StatusAffirming, ear.StatusContraindicated}
	for i, w := range want {
		n := got[i]
		if n.Type != w.typ || n.State != w.state || n.Previous != w.prev || n.Agent != "a1" {
			t.Errorf("delivery %d: %s %s (previous %q) of %s, want %s %s (previous %q)", i, n.Type, n.State, n.Previous, n.Agent, w.typ, w.state, w.prev)
		}
		r, err := ear.Verify(n.EAR, &key.PublicKey)
		if err != nil {
			t.Fatalf("delivery %d: EAR: %v", i, err)
		}
		sub, ok := r.Submods["a1"]
		if !ok || sub.Status != statuses[i] || sub.State != w.state {
			t.Errorf("delivery %d: EAR submod %+v, want status %s", i, sub, statuses[i])
		}
	}
	failed, _ := ear.Verify(got[2].EAR, &key.PublicKey)
	if sub := failed.Submods["a1"]; sub.Reason != verifier.ReasonPolicy || !slices.Equal(sub.Paths, []string{evil}) ||
		sub.Vector == nil || sub.Vector.Executables != ear.ExecUnrecognized || sub.Kind != store.KindSecurity {
		t.Errorf("failed EAR submod = %+v, want policy, %s, executables 33", sub, evil)
	}
	if !strings.Contains(strings.Join(got[2].Reasons, ";"), evil) {
		t.Errorf("failed event reasons %v do not name %s", got[2].Reasons, evil)
	}
	if left, err := tv.st.Undelivered(context.Background(), url, 100); err != nil || len(left) != 0 {
		t.Errorf("undelivered after the receiver came back: %d, %v", len(left), err)
	}

	// The API serves the latest EAR and the key that verifies it.
	h, err := verifier.NewAPI(tv.v, "0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(context.Background(), "GET", path, nil)
		req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec
	}
	jwk := get("/v1/ear-key")
	pub, err := ear.ParseJWK(jwk.Body.Bytes())
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf("ear-key: %v, %v", pub, err)
	}
	rec := get("/v1/agents/a1/ear")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/eat+jwt") {
		t.Errorf("ear content type %q", ct)
	}
	r, err := ear.Verify(rec.Body.String(), pub)
	if err != nil || r.Submods["a1"].Status != ear.StatusContraindicated || r.IssuedAt < time.Now().Add(-time.Minute).Unix() {
		t.Fatalf("API EAR = %+v, %v", r, err)
	}
	// A relying party's nonce is in the result it asks for.
	if r, err := ear.Verify(get("/v1/agents/a1/ear?nonce=rp-nonce_0123").Body.String(), pub); err != nil || r.Nonce != "rp-nonce_0123" {
		t.Errorf("EAR with a nonce: %+v, %v", r, err)
	}
	for _, bad := range []string{"short", strings.Repeat("n", 65), "not%20base64url"} {
		req := httptest.NewRequestWithContext(context.Background(), "GET", "/v1/agents/a1/ear?nonce="+bad, nil)
		req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("nonce %q: %d", bad, rec.Code)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := ear.Verify(rec.Body.String(), &other.PublicKey); !errors.Is(err, ear.ErrSignature) {
		t.Errorf("EAR verified with another key: %v", err)
	}
	var view verifier.AgentView
	json.Unmarshal(get("/v1/agents/a1").Body.Bytes(), &view)
	if len(view.Timeline) != 3 || view.Timeline[2].Type != verifier.EventFailed || view.Timeline[2].EAR != "" {
		t.Errorf("timeline = %+v", view.Timeline)
	}

	// A removal is an event too.
	if err := tv.v.Remove(context.Background(), "a1"); err != nil {
		t.Fatal(err)
	}
	got = rc.waitFor(t, 4, 10*time.Second)
	if got[3].Type != verifier.EventRemoved || got[3].Previous != store.StateFailed || got[3].EAR != "" {
		t.Errorf("removal event %+v", got[3])
	}
}
