// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
	"github.com/intactsec/intact/store/storetest"
)

var secret = []byte("0123456789abcdef-secret")

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"e1","type":"failed"}`)
	now := time.Unix(1700000000, 0)
	sig := webhook.Sign(secret, "e1", now.Unix(), body)
	ts := fmt.Sprint(now.Unix())
	if err := webhook.Verify(secret, "e1", sig, ts, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		secret    []byte
		id        string
		sig, ts   string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		"body changed":     {secret, "e1", sig, ts, []byte(`{"id":"e1","type":"trusted"}`), now, 0, webhook.ErrSignature},
		"another secret":   {[]byte("another-secret-16b"), "e1", sig, ts, body, now, 0, webhook.ErrSignature},
		"timestamp moved":  {secret, "e1", sig, fmt.Sprint(now.Unix() + 1), body, now, 0, webhook.ErrSignature},
		"stale":            {secret, "e1", sig, ts, body, now.Add(10 * time.Minute), 5 * time.Minute, webhook.ErrStale},
		"future":           {secret, "e1", sig, ts, body, now.Add(-10 * time.Minute), 5 * time.Minute, webhook.ErrStale},
		"no prefix":        {secret, "e1", sig[7:], ts, body, now, 0, webhook.ErrMalformed},
		"short":            {secret, "e1", sig[:20], ts, body, now, 0, webhook.ErrMalformed},
		"not hex":          {secret, "e1", "sha256=" + string(make([]byte, 64)), ts, body, now, 0, webhook.ErrMalformed},
		"no timestamp":     {secret, "e1", sig, "", body, now, 0, webhook.ErrMalformed},
		"timestamp +":      {secret, "e1", sig, "+" + ts, body, now, 0, webhook.ErrMalformed},
		"timestamp 0-pad":  {secret, "e1", sig, "0" + ts, body, now, 0, webhook.ErrMalformed},
		"fresh id":         {secret, "e2", sig, ts, body, now, 0, webhook.ErrSignature},
		"id with a dot":    {secret, "e1.1", sig, ts, body, now, 0, webhook.ErrMalformed},
		"no id":            {secret, "", sig, ts, body, now, 0, webhook.ErrMalformed},
		"timestamp letter": {secret, "e1", sig, ts + "x", body, now, 0, webhook.ErrMalformed},
	} {
		if err := webhook.Verify(tc.secret, tc.id, tc.sig, tc.ts, tc.body, tc.now, tc.tolerance); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	base, max := 100*time.Millisecond, 2*time.Second
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := webhook.Backoff(i, base, max); got != w*time.Millisecond {
			t.Errorf("Backoff(%d) = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	// No overflow however many attempts.
	if got := webhook.Backoff(1<<30, base, max); got != max {
		t.Errorf("Backoff(2^30) = %v", got)
	}
	if got := webhook.Backoff(3, 0, 0); got != time.Second {
		t.Errorf("Backoff with defaults = %v", got)
	}
}

func TestCheckReceiver(t *testing.T) {
	for _, u := range []string{"ftp://x/", "http://", "x", "http://user:pw@host/", "://"} {
		if err := webhook.CheckReceiver(webhook.Receiver{URL: u, Secret: secret}); err == nil {
			t.Errorf("CheckReceiver(%q) accepted", u)
		}
	}
	if err := webhook.CheckReceiver(webhook.Receiver{URL: "https://h/x", Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
	if err := webhook.CheckReceiver(webhook.Receiver{URL: "https://h:8/x", Secret: secret}); err != nil {
		t.Error(err)
	}
	// Plain http only when explicitly allowed.
	if err := webhook.CheckReceiver(webhook.Receiver{URL: "http://h:8/x", Secret: secret}); !errors.Is(err, webhook.ErrPlainHTTP) {
		t.Errorf("http receiver without AllowHTTP: %v", err)
	}
	if err := webhook.CheckReceiver(webhook.Receiver{URL: "http://h:8/x", Secret: secret, AllowHTTP: true}); err != nil {
		t.Error(err)
	}
	if _, err := webhook.New(context.Background(), webhook.Options{Store: nil}); err == nil {
		t.Error("no store accepted")
	}
}

// Must-show (issue 12): a captured delivery (a "trusted" event) replayed
// under a fresh event id, as an attacker would to slip past the
// receiver's deduplication after the agent failed, is rejected by
// Verify; the genuine delivery verifies, and replayed under its own id
// it is a duplicate of an id the receiver has seen.
func TestReplayWithFreshIDRejected(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := webhook.New(ctx, webhook.Options{Store: st, Receivers: []webhook.Receiver{{URL: srv.URL, Secret: secret, AllowHTTP: true}},
		Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := ev("5f1d0c2a9b8e4f7a")
	e.Body = []byte(`{"id":"5f1d0c2a9b8e4f7a","type":"trusted","agent":"web1"}`)
	if err := st.AppendEvents(ctx, []store.Event{e}); err != nil {
		t.Fatal(err)
	}
	go d.Run(ctx)
	var c delivery
	select {
	case c = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	cancel()
	verify := func(id string) error {
		return webhook.Verify(secret, id, c.h.Get(webhook.HeaderSignature), c.h.Get(webhook.HeaderTimestamp), c.body, time.Now(), time.Minute)
	}
	if err := verify(c.h.Get(webhook.HeaderEvent)); err != nil || c.h.Get(webhook.HeaderEvent) != e.ID {
		t.Fatalf("genuine delivery (id %q): %v", c.h.Get(webhook.HeaderEvent), err)
	}
	for _, fresh := range []string{"0000000000000000", "5f1d0c2a9b8e4f7b", e.ID + "x"} {
		if err := verify(fresh); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("replay under fresh id %s: %v, want ErrSignature", fresh, err)
		}
	}
}

// receiver records what it is sent; while down it answers 503.
type receiver struct {
	mu       sync.Mutex
	down     bool
	attempts int
	got      []string // event ids delivered (2xx)
	bad      []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify(secret, req.Header.Get(webhook.HeaderEvent), req.Header.Get(webhook.HeaderSignature), req.Header.Get(webhook.HeaderTimestamp), body, time.Now(), time.Minute); err != nil ||
		string(body) != `{"id":"`+req.Header.Get(webhook.HeaderEvent)+`"}` {
		r.bad = append(r.bad, fmt.Sprintf("%s: %v", body, err))
	}
	r.got = append(r.got, req.Header.Get(webhook.HeaderEvent))
}

func (r *receiver) state() (attempts int, got, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, slices.Clone(r.got), slices.Clone(r.bad)
}

func ev(id string) store.Event {
	return store.Event{ID: id, AgentID: "a", Type: "failed", Time: time.Now(), Body: []byte(`{"id":"` + id + `"}`)}
}

// Events appended while the receiver is down are delivered, in order and
// once each, when it comes back, by a deliverer started afresh on the
// same store (a verifier restart).
func TestDeliverAfterOutageAndRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{down: true}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	o := webhook.Options{Store: st, Receivers: []webhook.Receiver{{URL: srv.URL + "/hook", Secret: secret, AllowHTTP: true}},
		Base: 10 * time.Millisecond, Max: 40 * time.Millisecond, Poll: 50 * time.Millisecond}
	d, err := webhook.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	if err := st.AppendEvents(context.Background(), []store.Event{ev("e1"), ev("e2")}); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	// Retries while down, with backoff capped at 40ms.
	if !testenv.Until(5*time.Second, func() bool { a, _, _ := rc.state(); return a >= 5 }) {
		a, _, _ := rc.state()
		t.Fatalf("%d attempts in 5s", a)
	}
	cancel()
	<-done
	st.Close()

	// Restart: a new store handle and deliverer; one more event; the
	// receiver comes back.
	if st, err = sqlite.Open(db); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AppendEvents(context.Background(), []store.Event{ev("e3")}); err != nil {
		t.Fatal(err)
	}
	o.Store = st
	if d, err = webhook.New(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.down = false
	rc.mu.Unlock()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	if !testenv.Until(5*time.Second, func() bool { _, got, _ := rc.state(); return len(got) >= 3 }) {
		_, got, _ := rc.state()
		t.Fatalf("delivered %v in 5s", got)
	}
	time.Sleep(200 * time.Millisecond) // time under test: nothing more comes in the next 200 ms
	_, got, bad := rc.state()
	if !slices.Equal(got, []string{"e1", "e2", "e3"}) || len(bad) > 0 {
		t.Fatalf("delivered %v (bad %v), want e1 e2 e3 once each", got, bad)
	}
	if evs, err := st.Undelivered(context.Background(), o.Receivers[0].URL, 10); err != nil || len(evs) != 0 {
		t.Fatalf("undelivered after delivery: %v, %v", evs, err)
	}
}

// A redirect is not a delivery: the event is retried, not posted
// elsewhere.
func TestRedirectNotFollowed(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/hook" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	d, err := webhook.New(context.Background(), webhook.Options{Store: st, Receivers: []webhook.Receiver{{URL: srv.URL + "/hook", Secret: secret, AllowHTTP: true}},
		Base: 10 * time.Millisecond, Max: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st.AppendEvents(context.Background(), []store.Event{ev("e1")})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	d.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	if hits["/hook"] < 2 || hits["/elsewhere"] != 0 {
		t.Fatalf("hits = %v, want retries on /hook only", hits)
	}
}

// A delivery whose mark the store fails to write is not sent again: the
// mark is retried before anything else is sent (the old deliverer moved
// on and sent the event a second time at the next read of the outbox).
func TestMarkFailureNoDuplicate(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := storetest.NewFlaky(db)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := webhook.New(ctx, webhook.Options{Store: st, Receivers: []webhook.Receiver{{URL: srv.URL, Secret: secret, AllowHTTP: true}},
		Base: 5 * time.Millisecond, Max: 20 * time.Millisecond, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AppendEvents(ctx, []store.Event{ev("m1"), ev("m2")}); err != nil {
		t.Fatal(err)
	}
	st.FailNext(3) // the marks
	go d.Run(ctx)
	var left []store.Event
	if !testenv.Until(20*time.Second, func() bool {
		left, err = st.Undelivered(ctx, srv.URL, 10)
		return err == nil && len(left) == 0
	}) {
		t.Fatalf("still undelivered: %v %v", ids(left), err)
	}
	time.Sleep(100 * time.Millisecond) // time under test: a few polls in which nothing is sent again
	_, got, bad := rc.state()
	if n, _ := st.Injected(); n != 3 || len(bad) > 0 || !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("injected %d mark failures; receiver got %v (bad %v), want m1 and m2 once", n, got, bad)
	}
}

func ids(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}
