// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// countingReceiver counts deliveries by event id, in arrival order, by
// the replica that sent them, and the most requests it ever had at once.
type countingReceiver struct {
	mu        sync.Mutex
	order     []string
	count     map[string]int
	by        map[string]int
	inflight  int
	maxFlight int
	delay     time.Duration
}

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	c.mu.Lock()
	c.inflight++
	c.maxFlight = max(c.maxFlight, c.inflight)
	c.mu.Unlock()
	time.Sleep(c.delay) // time under test: a receiver that takes its time: deliveries overlap if two replicas send
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	id := req.Header.Get(webhook.HeaderEvent)
	c.order = append(c.order, id)
	c.count[id]++
	c.by[req.Header.Get("X-Test-Replica")]++
}

func (c *countingReceiver) snapshot() (order []string, by map[string]int, maxFlight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := map[string]int{}
	for k, v := range c.by {
		b[k] = v
	}
	return slices.Clone(c.order), b, c.maxFlight
}

// tagged adds the sending replica's name to each request.
type tagged struct{ name string }

func (t tagged) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Test-Replica", t.name)
	return http.DefaultTransport.RoundTrip(req)
}

// Two replicas' deliverers on one PostgreSQL store: one at a time delivers
// to the receiver (the holder of its delivery lease), so every event
// arrives once, in order, and never two requests at once; when the
// delivering replica dies mid-run (its context ends, no release: a
// kill), the other takes the lease when it lapses and delivers the rest.
// At most the one event in flight at the kill may arrive twice. (Without
// delivery leases both replicas send everything: TestDeliveryWithoutLeases
// shows that, so this test cannot pass by accident.)
func TestOneDelivererPerReceiver(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	rc := &countingReceiver{count: map[string]int{}, by: map[string]int{}, delay: 5 * time.Millisecond}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	recv := []webhook.Receiver{{URL: srv.URL + "/hook", Secret: secret, AllowHTTP: true}}
	const ttl = 5 * time.Second // renewed every third: a holder loses it only after 3 s without a renewal
	type replica struct {
		st     *postgres.DB
		d      *webhook.Deliverer
		cancel context.CancelFunc
		done   chan struct{}
	}
	start := func(name string) *replica {
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		d, err := webhook.New(ctx, webhook.Options{Store: st, Receivers: recv, Leases: st, Replica: name, LeaseTTL: ttl,
			Client: &http.Client{Timeout: 10 * time.Second, Transport: tagged{name}},
			Base:   10 * time.Millisecond, Max: 50 * time.Millisecond, Poll: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &replica{st: st, d: d, cancel: cancel, done: make(chan struct{})}
		go func() { d.Run(rctx); close(r.done) }()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	reps := map[string]*replica{"A": start("A"), "B": start("B")}
	var want []string
	appendEvents := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("e%04d", i)
			want = append(want, id)
			if err := reps["A"].st.AppendEvents(ctx, []store.Event{ev(id)}); err != nil {
				t.Fatal(err)
			}
			if i%10 == 0 {
				reps["A"].d.Wake()
				reps["B"].d.Wake()
				time.Sleep(10 * time.Millisecond) // time under test: events arrive over a while
			}
		}
	}
	waitAll := func(n int, limit time.Duration) []string {
		t.Helper()
		var order []string
		seen := map[string]bool{}
		if !testenv.Until(limit, func() bool {
			order, _, _ = rc.snapshot()
			clear(seen)
			for _, id := range order {
				seen[id] = true
			}
			return len(seen) >= n
		}) {
			t.Fatalf("%d of %d events delivered after %v", len(seen), n, limit)
		}
		return order
	}

	appendEvents(0, 100)
	waitAll(100, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // nothing more may come: time is the thing under test
	order, by, maxFlight := rc.snapshot()
	if !slices.Equal(order, want) {
		t.Fatalf("two live replicas: delivered %d (%v...), want each of %d once, in order", len(order), order[:min(len(order), 5)], len(want))
	}
	if maxFlight != 1 || len(by) != 1 {
		t.Fatalf("two live replicas: %d requests at once, senders %v; want one sender", maxFlight, by)
	}
	var holder, other string
	for name := range by {
		holder = name
	}
	other = map[string]string{"A": "B", "B": "A"}[holder]
	t.Logf("first 100 events: delivered once each, in order, all by %s", holder)

	// The holder dies mid-run: it stops without releasing its lease.
	rc.mu.Lock()
	rc.delay = 20 * time.Millisecond
	rc.mu.Unlock()
	go func() {
		// kill the holder once it is delivering the second batch
		if !testenv.Until(time.Minute, func() bool { o, _, _ := rc.snapshot(); return len(o) >= 130 }) {
			t.Error("the holder has not delivered 130 events in a minute")
		}
		reps[holder].cancel()
	}()
	appendEvents(100, 300)
	<-reps[holder].done
	killed := time.Now()
	waitAll(300, 30*time.Second)
	took := time.Since(killed)
	time.Sleep(300 * time.Millisecond) // time under test: nothing more may come
	order, by, maxFlight = rc.snapshot()
	counts := map[string]int{}
	var dups []string
	for _, id := range order {
		if counts[id]++; counts[id] > 1 {
			dups = append(dups, id)
		}
	}
	for _, id := range want {
		if counts[id] == 0 {
			t.Errorf("event %s never delivered", id)
		}
	}
	if len(dups) > 1 {
		t.Errorf("after the kill: %d events delivered twice (%v), want at most the one in flight", len(dups), dups)
	}
	// in order: each event after the first delivery of the one before
	// (the resent in-flight event excepted)
	first := map[string]int{}
	for i, id := range order {
		if _, ok := first[id]; !ok {
			first[id] = i
		}
	}
	for i := 1; i < len(want); i++ {
		if first[want[i]] < first[want[i-1]] {
			t.Errorf("%s delivered before %s", want[i], want[i-1])
		}
	}
	if maxFlight != 1 {
		t.Errorf("%d requests at once: two replicas sent together", maxFlight)
	}
	if by[other] == 0 {
		t.Errorf("the surviving replica %s delivered nothing: %v", other, by)
	}
	t.Logf("%s killed after %d deliveries; %s delivered the rest within %v of the kill (lease %v); by replica %v; delivered twice: %v",
		holder, by[holder], other, took.Round(time.Millisecond), ttl, by, dups)
}

// Without delivery leases (as before them) two replicas' deliverers each
// send every event: the receiver gets duplicates. This is what
// TestOneDelivererPerReceiver rules out.
func TestDeliveryWithoutLeases(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	rc := &countingReceiver{count: map[string]int{}, by: map[string]int{}, delay: 5 * time.Millisecond}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	recv := []webhook.Receiver{{URL: srv.URL + "/hook", Secret: secret, AllowHTTP: true}}
	var ds []*webhook.Deliverer
	var st0 *postgres.DB
	for _, name := range []string{"A", "B"} {
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st0 = st
		d, err := webhook.New(ctx, webhook.Options{Store: st, Receivers: recv,
			Client: &http.Client{Timeout: 10 * time.Second, Transport: tagged{name}}, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	for i := range 40 {
		if err := st0.AppendEvents(ctx, []store.Event{ev(fmt.Sprintf("w%04d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(rctx) }()
	}
	// Every event delivered, and some twice (by both replicas).
	testenv.Until(20*time.Second, func() bool {
		order, by, _ := rc.snapshot()
		seen := map[string]bool{}
		for _, id := range order {
			seen[id] = true
		}
		return len(seen) == 40 && len(order) > 40 && len(by) == 2
	})
	cancel()
	wg.Wait()
	order, by, _ := rc.snapshot()
	if len(order) <= 40 || len(by) != 2 {
		t.Fatalf("without leases: %d deliveries of 40 events by %v; want both replicas sending, duplicates", len(order), by)
	}
	t.Logf("without leases: %d deliveries of 40 events, by replica %v", len(order), by)
}
