// SPDX-License-Identifier: Apache-2.0

// Package webhook delivers the verifier's events (store outbox) to HTTP
// receivers: in order per receiver, each event until a receiver answers
// 2xx, with capped exponential backoff between attempts, resuming after
// a restart from the receiver's delivery mark in the store. Delivery is
// at least once: a receiver deduplicates by the event id, which the
// signature covers.
//
// Each request carries the event's exact stored body and
//
//	X-Intact-Event:     the event id (1-128 of A-Z a-z 0-9 - _)
//	X-Intact-Timestamp: unix seconds when this attempt was sent
//	X-Intact-Signature: sha256=<hex HMAC-SHA256(secret, id + "." + timestamp + "." + body)>
//
// Verify checks them on the receiving side. Since the id is signed, a
// captured delivery replayed under a fresh id does not verify, and one
// replayed under its own id is a duplicate the receiver drops. Receivers
// are https:// unless a Receiver allows plain http (AllowHTTP): the
// body is not encrypted by the signature, only authenticated.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intactsec/intact/store"
)

// Request headers.
const (
	HeaderEvent     = "X-Intact-Event"
	HeaderTimestamp = "X-Intact-Timestamp"
	HeaderSignature = "X-Intact-Signature"
)

// Conditions Verify reports (errors.Is).
var (
	ErrMalformed = errors.New("webhook: malformed signature headers")
	ErrSignature = errors.New("webhook: signature does not match")
	ErrStale     = errors.New("webhook: timestamp outside the tolerance")
)

// MinSecret is the shortest secret accepted.
const MinSecret = 16

// MaxEventID is the longest event id.
const MaxEventID = 128

// ValidEventID: 1-128 ASCII letters, digits, '-' and '_' (never '.',
// the separator of the signed message, so an id and a timestamp cannot
// be shifted into each other).
func ValidEventID(id string) bool {
	if id == "" || len(id) > MaxEventID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Sign returns the X-Intact-Signature value for event id with body, sent
// at ts.
func Sign(secret []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature headers (X-Intact-Event id,
// timestamp, signature) over its exact body, and that its timestamp is
// within tolerance of now (tolerance <= 0: not checked). A delivery
// under another id than the one signed fails (ErrSignature); a replay
// under the signed id within the tolerance is for the receiver to drop
// as a duplicate of that id.
func Verify(secret []byte, id, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	if !ValidEventID(id) {
		return fmt.Errorf("%w: event id %q", ErrMalformed, id)
	}
	if len(timestamp) == 0 || len(timestamp) > 19 {
		return fmt.Errorf("%w: timestamp %q", ErrMalformed, timestamp)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts < 0 || strconv.FormatInt(ts, 10) != timestamp {
		return fmt.Errorf("%w: timestamp %q", ErrMalformed, timestamp)
	}
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return fmt.Errorf("%w: signature %q", ErrMalformed, signature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: signature %q", ErrMalformed, signature)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, id, ts, body), "sha256="))
	if !hmac.Equal(got, want) {
		return ErrSignature
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: sent %v, now %v", ErrStale, time.Unix(ts, 0).UTC(), now.UTC())
		}
	}
	return nil
}

// Backoff is the wait after the attempt-th failed attempt (0-based):
// base doubled per attempt, at most max.
func Backoff(attempt int, base, max time.Duration) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	if max < base {
		max = base
	}
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// jitter spreads d over [d/2, d], so that receivers coming back are not
// hit by every verifier at once.
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// Receiver is one webhook endpoint.
type Receiver struct {
	URL    string
	Secret []byte
	// AllowHTTP accepts an http:// URL (the notifications travel in
	// clear, and a network attacker can hold them back). Without it only
	// https:// is accepted.
	AllowHTTP bool
}

// ErrPlainHTTP: an http:// receiver without AllowHTTP.
var ErrPlainHTTP = errors.New("webhook: plain http receiver not allowed")

// Options configure a Deliverer.
type Options struct {
	Store     store.Store
	Receivers []Receiver
	Logger    *slog.Logger
	Client    *http.Client  // default: 10s timeout
	Base, Max time.Duration // backoff (default 1s, 5m)
	Poll      time.Duration // how often the outbox is read without a Wake (default 5s)
	Now       func() time.Time
	// Leases, on a store several verifier replicas share, makes one
	// replica at a time (Replica, the holder of the receiver's delivery
	// lease) deliver to each receiver, so that the replicas do not each
	// send the outbox. A lease lives LeaseTTL (default
	// DefaultDeliveryLeaseTTL) and is renewed while its holder delivers
	// or waits; a holder sends only with time left on its lease, each
	// request bounded by it, and marks an event delivered only while it
	// holds the lease (store.DeliveryLeaser.MarkDeliveredAs), so two
	// replicas never send to one receiver at once. A holder that dies
	// hands over when its lease lapses; the next holder resends at most
	// the event that was in flight (delivered, not yet marked).
	Leases   store.DeliveryLeaser
	Replica  string
	LeaseTTL time.Duration
}

// DefaultDeliveryLeaseTTL is how long a replica's delivery lease of a
// receiver lives unless renewed: a dead holder's receivers are taken
// over within about this plus Poll.
const DefaultDeliveryLeaseTTL = 15 * time.Second

// Deliverer sends the outbox to the receivers.
type Deliverer struct {
	o    Options
	wake []chan struct{}
}

// CheckReceiver checks a receiver's URL and secret.
func CheckReceiver(r Receiver) error {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("webhook url %q: want http(s)://HOST[:PORT]/PATH", r.URL)
	}
	if u.Scheme == "http" && !r.AllowHTTP {
		return fmt.Errorf("webhook url %q: %w (use https, or allow http explicitly)", r.URL, ErrPlainHTTP)
	}
	if len(r.Secret) < MinSecret {
		return fmt.Errorf("webhook %s: secret shorter than %d bytes", r.URL, MinSecret)
	}
	return nil
}

// New checks the receivers and registers them in the store (a new
// receiver gets the events appended from now on).
func New(ctx context.Context, o Options) (*Deliverer, error) {
	if o.Store == nil {
		return nil, errors.New("webhook: no store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second,
			// A redirect is an answer that is not 2xx (retried), never
			// a POST to somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Base <= 0 {
		o.Base = time.Second
	}
	if o.Max <= 0 {
		o.Max = 5 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultDeliveryLeaseTTL
	}
	if o.Leases != nil && o.Replica == "" {
		return nil, errors.New("webhook: delivery leases without a replica name")
	}
	d := &Deliverer{o: o}
	seen := map[string]bool{}
	for _, r := range o.Receivers {
		if err := CheckReceiver(r); err != nil {
			return nil, err
		}
		if seen[r.URL] {
			return nil, fmt.Errorf("webhook url %q given twice", r.URL)
		}
		seen[r.URL] = true
		if _, err := o.Store.AddReceiver(ctx, r.URL); err != nil {
			return nil, fmt.Errorf("webhook %s: %w", r.URL, err)
		}
		d.wake = append(d.wake, make(chan struct{}, 1))
	}
	return d, nil
}

// Wake tells the deliverer new events are in the outbox.
func (d *Deliverer) Wake() {
	for _, w := range d.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, r := range d.o.Receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deliver(ctx, r, d.wake[i])
		}()
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// lease is a deliverer's hold on a receiver's delivery lease (with
// Options.Leases): until is a local end, conservative (taken before the
// renewal was sent; the store's lease ends later).
type lease struct {
	held  bool
	until time.Time
}

// minLeaseLeft is the least time left on a delivery lease to send.
const minLeaseLeft = time.Second

// hold renews the delivery lease once a third of it is gone, and reports
// whether this deliverer holds it with at least minLeaseLeft ahead.
// Without leases it always holds.
func (d *Deliverer) hold(ctx context.Context, r Receiver, l *lease, log *slog.Logger) bool {
	if d.o.Leases == nil {
		return true
	}
	if l.held && time.Until(l.until) > d.o.LeaseTTL*2/3 {
		return true
	}
	t0 := time.Now()
	ok, err := d.o.Leases.LeaseReceiver(ctx, d.o.Replica, r.URL, d.o.LeaseTTL)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Error("renewing the delivery lease", "err", err)
		}
		// what is left of a lease held is still ours
	case ok:
		if !l.held {
			log.Info("delivering (delivery lease taken)", "replica", d.o.Replica)
		}
		l.held, l.until = true, t0.Add(d.o.LeaseTTL)
	default:
		if l.held {
			log.Info("another replica delivers (delivery lease lost)", "replica", d.o.Replica)
		}
		l.held = false
	}
	return l.held && time.Until(l.until) > minLeaseLeft
}

// mark records e delivered: fenced by the delivery lease with replicas.
func (d *Deliverer) mark(ctx context.Context, r Receiver, seq int64) error {
	if d.o.Leases != nil {
		return d.o.Leases.MarkDeliveredAs(ctx, d.o.Replica, r.URL, seq)
	}
	return d.o.Store.MarkDelivered(ctx, r.URL, seq)
}

func (d *Deliverer) deliver(ctx context.Context, r Receiver, wake <-chan struct{}) {
	log := d.o.Logger.With("webhook", r.URL)
	var l lease
	for ctx.Err() == nil {
		if !d.hold(ctx, r, &l, log) {
			sleep(ctx, d.o.Poll, nil) // another replica delivers (or the store failed): try again later
			continue
		}
		evs, err := d.o.Store.Undelivered(ctx, r.URL, 64)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("reading the event outbox", "err", err)
			}
			sleep(ctx, d.o.Poll, nil)
			continue
		}
		if len(evs) == 0 {
			sleep(ctx, d.o.Poll, wake)
			continue
		}
		d.deliverEvents(ctx, r, evs, &l, log)
	}
}

// deliverEvents sends evs in order, each until the receiver takes it, and
// marks each delivered before the next is sent. It returns early when ctx
// ends or the delivery lease is lost (the next holder goes on from the
// mark).
func (d *Deliverer) deliverEvents(ctx context.Context, r Receiver, evs []store.Event, l *lease, log *slog.Logger) {
	for _, e := range evs {
		for attempt := 0; ; attempt++ {
			if !d.hold(ctx, r, l, log) {
				return
			}
			err := d.send(ctx, r, &e, l)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := jitter(Backoff(attempt, d.o.Base, d.o.Max))
			log.Warn("webhook delivery failed; retrying", "event", e.ID, "type", e.Type, "agent", e.AgentID, "attempt", attempt+1, "retry_in", wait, "err", err)
			// A long wait renews the lease on the way (hold, above,
			// after it): sleep in steps of at most a third of it.
			for end := time.Now().Add(wait); ctx.Err() == nil && time.Now().Before(end); {
				sleep(ctx, min(time.Until(end), d.o.LeaseTTL/3), nil)
				if d.o.Leases != nil && time.Now().Before(end) && !d.hold(ctx, r, l, log) {
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
		// Marked before the next event is sent: a store that fails
		// here is tried again, so that a failing store does not make
		// the receiver get this event twice. (Delivered and not
		// marked when the verifier stops: sent again after the
		// restart, or by the next holder of the delivery lease; at
		// least once.)
		for attempt := 0; ; attempt++ {
			err := d.mark(ctx, r, e.Seq)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, store.ErrLeaseLost) {
				log.Warn("delivery lease lost before the event was marked delivered: the next holder sends it again", "event", e.ID)
				l.held = false
				return
			}
			wait := jitter(Backoff(attempt, d.o.Base, d.o.Max))
			log.Error("marking an event delivered failed; retrying", "event", e.ID, "attempt", attempt+1, "retry_in", wait, "err", err)
			sleep(ctx, wait, nil)
		}
	}
}

// StatusError is a receiver's non-2xx answer.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("receiver answered %d", e.Status) }

// send posts e to r; with delivery leases, the request ends before the
// lease l does (less a margin), so that no other replica can be sending
// to r meanwhile.
func (d *Deliverer) send(ctx context.Context, r Receiver, e *store.Event, l *lease) error {
	if !ValidEventID(e.ID) {
		// Never sent: receivers could not verify it. (The verifier's
		// ids are 32 hex digits.)
		return fmt.Errorf("event id %q is not a valid webhook event id", e.ID)
	}
	if d.o.Leases != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, l.until.Add(-d.o.LeaseTTL/20))
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(e.Body))
	if err != nil {
		return err
	}
	ts := d.o.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "intact-verifier")
	req.Header.Set(HeaderEvent, e.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(r.Secret, e.ID, ts, e.Body))
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Status: resp.StatusCode}
	}
	return nil
}
