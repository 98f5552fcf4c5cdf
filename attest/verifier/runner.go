// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/store"
)

// bootPCRs are quoted with the log PCR: the boot_aggregate covers them.
var bootPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}

// runner attests one agent at the verifier's interval.
type runner struct {
	v      *Verifier
	agent  *store.Agent
	status store.Status
	ak     *quote.AK
	client *agentClient
	cancel context.CancelFunc
	sel    string // the selection as a query value (it is the same at every attestation)

	mu  sync.Mutex
	gap bool // the status has a gap (for Acknowledge)
	ack bool // an operator acknowledged it: cleared at the next attestation

	ended atomic.Bool // run returned (a security failure stops it)
	// stale: the lease fence dropped a write of this agent; read it
	// again before the next attestation (set by the writer).
	stale atomic.Bool
	fresh bool // the next result is the first since status was read from the store
}

func (r *runner) run(ctx context.Context, delay time.Duration) {
	defer r.ended.Store(true)
	defer r.client.close()
	t := time.NewTimer(delay)
	defer t.Stop()
	due := time.Now().Add(delay) // when the next attestation should start
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		r.v.m.late.observe(max(0, start.Sub(due)))
		if stop := r.attestOnce(ctx); stop {
			return
		}
		due = start.Add(r.v.o.Interval)
		t.Reset(max(0, time.Until(due)))
	}
}

// attestOnce attests the agent once and queues the result. It reports
// whether attestation stops (a security failure).
func (r *runner) attestOnce(ctx context.Context) (stop bool) {
	if r.stale.Swap(false) {
		if stop, ok := r.reread(ctx); !ok {
			return stop
		}
	}
	a := r.agent
	st := r.status
	now := r.v.o.Now().UTC()
	res := store.Result{AgentID: a.ID, Time: now}
	app, err := r.attest(ctx)
	if ctx.Err() != nil {
		return true // shutting down: no result
	}
	// Events (with a signed result) only on changes: not on the path of
	// every attestation.
	var evs []store.Event
	acked := r.takeAck() && st.Gap != nil
	if acked {
		st.Gap = nil
	}
	st.Attestations++
	st.LastAttested = now
	var se *SecurityError
	switch {
	case errors.As(err, &se):
		st.State, st.Kind, st.Reasons = store.StateFailed, store.KindSecurity, []string{se.Error()}
	case errors.Is(err, ErrUnreachable):
		// No answer, no evidence: not a failure. (This runner stopped at
		// a security failure, so failed never becomes unreachable.)
		st.State, st.Kind, st.Reasons = store.StateUnreachable, "", []string{err.Error()}
	case err != nil:
		st.State, st.Kind, st.Reasons = store.StateFailed, store.KindOperational, []string{err.Error()}
	default:
		st.Progress = app.Progress
		if app.Reset && r.gapBefore(now) {
			st.Gap = &store.Gap{LastVerified: r.lastVerified(), Rebooted: now}
		}
		st.LastVerified = now
		switch {
		case len(app.Findings) > 0:
			st.State, st.Kind, st.Reasons = store.StateFailed, store.KindSecurity, findingReasons(app.Findings, app.MoreFindings)
		case st.Gap != nil:
			st.State, st.Kind, st.Reasons = store.StateGap, "", []string{gapReason(st.Gap)}
		default:
			st.State, st.Kind, st.Reasons = store.StateTrusted, "", nil
			st.LastTrusted = now
		}
	}
	res.State, res.Kind, res.Reasons, res.LogOffset, res.Attestations = st.State, st.Kind, st.Reasons, st.Progress.LogOffset, st.Attestations
	rebooted := app != nil && app.Reset || se != nil && se.Reboot
	if rebooted {
		r.v.log.Info("agent rebooted: attesting its new boot from the start", "agent", a.ID, "gap", st.Gap != nil)
	}
	if st.State != r.status.State || !reflect.DeepEqual(st.Reasons, r.status.Reasons) {
		r.v.log.Info("agent state", "agent", a.ID, "state", st.State, "reasons", st.Reasons)
	}
	if acked {
		evs = r.event(evs, EventAcknowledged, st, now)
	}
	if rebooted {
		evs = r.event(evs, EventReboot, st, now)
	}
	if st.State != r.status.State || st.Kind != r.status.Kind {
		typ := EventFailed
		switch st.State {
		case store.StateTrusted:
			typ = EventTrusted
		case store.StateGap:
			typ = EventGap
		case store.StateUnreachable:
			typ = EventUnreachable
		}
		evs = r.event(evs, typ, st, now)
	}
	r.status = st
	r.v.m.attested(&st)
	r.mu.Lock()
	r.gap = st.Gap != nil
	r.mu.Unlock()
	select {
	case r.v.writes <- write{store.Update{AgentID: a.ID, Created: a.Created, Status: st, Result: res, Events: evs, Heartbeat: r.v.o.HistoryHeartbeat}, r.fresh}:
		r.fresh = false
	case <-ctx.Done():
	}
	return st.Kind == store.KindSecurity
}

// reread replaces the runner's status with the stored one, after the
// lease fence dropped a write of this agent: the next attestation is
// judged against what is stored, so the state changes and events of the
// dropped writes are made again. ok false: no attestation now (stop: the
// agent is gone, enrolled again or failed on a security check meanwhile;
// otherwise the store could not be read: tried again next interval).
func (r *runner) reread(ctx context.Context) (stop, ok bool) {
	a, err := r.v.o.Store.GetAgent(ctx, r.agent.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, false
	case err != nil:
		r.stale.Store(true)
		r.v.log.Warn("reading an agent again after the lease fence dropped its result failed; tried again next interval", "agent", r.agent.ID, "err", err)
		return false, false
	case !a.Created.Equal(r.agent.Created), a.State == store.StateFailed && a.Kind == store.KindSecurity:
		return true, false
	}
	r.status, r.fresh = a.Status, true
	r.mu.Lock()
	r.gap = a.Status.Gap != nil
	r.mu.Unlock()
	return false, true
}

// lastVerified is when the agent's evidence last verified before this
// attestation (LastTrusted for statuses stored before LastVerified).
func (r *runner) lastVerified() time.Time {
	if !r.status.LastVerified.IsZero() {
		return r.status.LastVerified
	}
	return r.status.LastTrusted
}

// gapBefore reports whether the attestation at now, which found a
// reboot, follows a gap: the attestation before it did not verify (the
// agent was unreachable or answered an error), or none verified for
// longer than two intervals and a request timeout (the verifier itself
// was down). Records the previous boot measured after its last verified
// quote were never seen, and the reboot erased their trace from the
// PCRs.
func (r *runner) gapBefore(now time.Time) bool {
	if r.status.State == store.StateFailed || r.status.State == store.StateUnreachable {
		return true
	}
	last := r.lastVerified()
	return last.IsZero() || now.Sub(last) > 2*r.v.o.Interval+r.v.o.Timeout
}

// gapReason is the failure reason of the gap-after-reboot state.
func gapReason(g *store.Gap) string {
	return fmt.Sprintf("%s: the machine rebooted after attestation stopped (last verified %s, new boot found %s): what ran in between is unknown; acknowledge with agents ack",
		ReasonGap, g.LastVerified.Format(time.RFC3339), g.Rebooted.Format(time.RFC3339))
}

// requestAck asks the runner to clear the agent's gap at its next
// attestation; false if the agent has none.
func (r *runner) requestAck() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.gap {
		return false
	}
	r.ack = true
	return true
}

func (r *runner) takeAck() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ack := r.ack
	r.ack = false
	return ack
}

func (r *runner) event(evs []store.Event, typ string, st store.Status, now time.Time) []store.Event {
	return append(evs, r.v.newEvent(typ, r.agent, st, r.status.State, now))
}

// attest runs one attestation: quote, list, appraisal.
func (r *runner) attest(ctx context.Context) (*Appraisal, error) {
	pol, err := r.v.policy(ctx, r.agent.Policy)
	if err != nil {
		return nil, fmt.Errorf("runtime policy %q: %w", r.agent.Policy, err)
	}
	if err := checkLogPCR(pol, r.agent.LogSource, r.agent.LogPCR); err != nil {
		return nil, err
	}
	p := &EvidenceAppraiser{AK: r.ak, Bank: digest.SHA256, LogPCR: r.agent.LogPCR, BootPCRs: bootPCRs, Policy: pol, Now: r.v.o.Now(),
		MaxRecords: r.v.o.MaxAttestRecords, MaxBytes: r.v.o.MaxAttestBytes}
	if bp := pol.BootPolicy(); bp != "" {
		// A boot policy named and missing (or broken) is an error, never
		// a boot accepted unjudged.
		if p.Boot, err = r.v.bootPolicy(ctx, bp); err != nil {
			return nil, fmt.Errorf("runtime policy %q names %w", r.agent.Policy, err)
		}
	}
	nonce := make([]byte, attest.NonceSize)
	if _, err := io.ReadFull(r.v.o.Rand, nonce); err != nil {
		return nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, r.v.o.Timeout)
	defer cancel()
	if r.sel == "" {
		r.sel = quoteSelQuery(p.Selection())
	}
	q, err := r.client.quote(qctx, nonce, r.sel, r.status.Progress.LogOffset)
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	ev := &Evidence{Quote: q, More: func(start int64) (*attest.LogChunk, error) {
		c, err := r.client.log(qctx, start)
		if err != nil {
			return nil, fmt.Errorf("measurement list: %w", err)
		}
		return c, nil
	}, BootLog: func() ([]byte, error) {
		b, err := r.client.bootLog(qctx)
		if err != nil {
			return nil, fmt.Errorf("boot event log: %w", err)
		}
		return b, nil
	}}
	return p.Appraise(r.status.Progress, ev, nonce)
}
