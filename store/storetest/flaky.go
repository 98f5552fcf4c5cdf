// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/intactsec/intact/store"
)

// ErrInjected is the failure a Flaky store injects.
var ErrInjected = errors.New("storetest: injected write failure")

// Flaky wraps a store.Store and fails writes on demand: after
// FailNext(n) the next n calls that write (create, delete, save, put,
// append, add receiver, mark delivered, prune) fail with ErrInjected
// without reaching the wrapped store. Reads always pass. It is for
// proving that callers lose nothing when the store fails for a while.
type Flaky struct {
	store.Store

	mu       sync.Mutex
	fail     int            // writes still to fail
	injected int            // failures injected so far
	byOp     map[string]int // failures injected, by method
	refused  []store.Event  // events in writes that failed, in order
}

// NewFlaky wraps s.
func NewFlaky(s store.Store) *Flaky { return &Flaky{Store: s, byOp: map[string]int{}} }

// FailNext makes the next n writes fail.
func (f *Flaky) FailNext(n int) {
	f.mu.Lock()
	f.fail = n
	f.mu.Unlock()
}

// Pending is how many of the failures asked for are still to come.
func (f *Flaky) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

// Injected is how many failures were injected, in all and by method.
func (f *Flaky) Injected() (int, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.byOp))
	for k, v := range f.byOp {
		m[k] = v
	}
	return f.injected, m
}

// Refused returns the events of the writes that failed, in order (an
// event refused twice is there twice).
func (f *Flaky) Refused() []store.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Event(nil), f.refused...)
}

func (f *Flaky) write(op string, evs ...store.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail <= 0 {
		return nil
	}
	f.fail--
	f.injected++
	f.byOp[op]++
	f.refused = append(f.refused, evs...)
	return ErrInjected
}

func (f *Flaky) CreateAgent(ctx context.Context, a *store.Agent, evs ...store.Event) error {
	if err := f.write("CreateAgent", evs...); err != nil {
		return err
	}
	return f.Store.CreateAgent(ctx, a, evs...)
}

func (f *Flaky) DeleteAgent(ctx context.Context, id string, evs ...store.Event) error {
	if err := f.write("DeleteAgent", evs...); err != nil {
		return err
	}
	return f.Store.DeleteAgent(ctx, id, evs...)
}

func (f *Flaky) SaveAttestations(ctx context.Context, batch []store.Update) error {
	var evs []store.Event
	for _, u := range batch {
		evs = append(evs, u.Events...)
	}
	if err := f.write("SaveAttestations", evs...); err != nil {
		return err
	}
	return f.Store.SaveAttestations(ctx, batch)
}

func (f *Flaky) PruneHistory(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := f.write("PruneHistory"); err != nil {
		return 0, err
	}
	return f.Store.PruneHistory(ctx, before, limit)
}

func (f *Flaky) PutPolicy(ctx context.Context, p *store.Policy) error {
	if err := f.write("PutPolicy"); err != nil {
		return err
	}
	return f.Store.PutPolicy(ctx, p)
}

func (f *Flaky) AppendEvents(ctx context.Context, evs []store.Event) error {
	if err := f.write("AppendEvents", evs...); err != nil {
		return err
	}
	return f.Store.AppendEvents(ctx, evs)
}

func (f *Flaky) AddReceiver(ctx context.Context, name string) (int64, error) {
	if err := f.write("AddReceiver"); err != nil {
		return 0, err
	}
	return f.Store.AddReceiver(ctx, name)
}

func (f *Flaky) MarkDelivered(ctx context.Context, receiver string, seq int64) error {
	if err := f.write("MarkDelivered"); err != nil {
		return err
	}
	return f.Store.MarkDelivered(ctx, receiver, seq)
}

func (f *Flaky) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := f.write("PruneEvents"); err != nil {
		return 0, err
	}
	return f.Store.PruneEvents(ctx, before, limit)
}
