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
}

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

func (d *Deliverer) deliver(ctx context.Context, r Receiver, wake <-chan struct{}) {
	log := d.o.Logger.With("webhook", r.URL)
	for ctx.Err() == nil {
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
		for _, e := range evs {
			for attempt := 0; ; attempt++ {
				err := d.send(ctx, r, &e)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				wait := jitter(Backoff(attempt, d.o.Base, d.o.Max))
				log.Warn("webhook delivery failed; retrying", "event", e.ID, "type", e.Type, "agent", e.AgentID, "attempt", attempt+1, "retry_in", wait, "err", err)
				sleep(ctx, wait, nil)
				if ctx.Err() != nil {
					return
				}
			}
			// Marked before the next event is sent: a store that fails
			// here is tried again, so that a failing store does not make
			// the receiver get this event twice. (Delivered and not
			// marked when the verifier stops: sent again after the
			// restart; at least once.)
			for attempt := 0; ; attempt++ {
				err := d.o.Store.MarkDelivered(ctx, r.URL, e.Seq)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				wait := jitter(Backoff(attempt, d.o.Base, d.o.Max))
				log.Error("marking an event delivered failed; retrying", "event", e.ID, "attempt", attempt+1, "retry_in", wait, "err", err)
				sleep(ctx, wait, nil)
			}
		}
	}
}

// StatusError is a receiver's non-2xx answer.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("receiver answered %d", e.Status) }

func (d *Deliverer) send(ctx context.Context, r Receiver, e *store.Event) error {
	if !ValidEventID(e.ID) {
		// Never sent: receivers could not verify it. (The verifier's
		// ids are 32 hex digits.)
		return fmt.Errorf("event id %q is not a valid webhook event id", e.ID)
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
