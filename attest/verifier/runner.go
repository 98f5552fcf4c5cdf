// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/intactsec/intact/attest"
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
}

func (r *runner) run(ctx context.Context, delay time.Duration) {
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
	a := r.agent
	st := r.status
	now := r.v.o.Now().UTC()
	res := store.Result{AgentID: a.ID, Time: now}
	app, err := r.attest(ctx)
	if ctx.Err() != nil {
		return true // shutting down: no result
	}
	st.Attestations++
	st.LastAttested = now
	var se *SecurityError
	switch {
	case errors.As(err, &se):
		st.State, st.Kind, st.Reasons = store.StateFailed, store.KindSecurity, []string{se.Error()}
	case err != nil:
		st.State, st.Kind, st.Reasons = store.StateFailed, store.KindOperational, []string{err.Error()}
	case len(app.Findings) > 0:
		st.Progress = app.Progress
		st.State, st.Kind, st.Reasons = store.StateFailed, store.KindSecurity, findingReasons(app.Findings, app.MoreFindings)
	default:
		st.Progress = app.Progress
		st.State, st.Kind, st.Reasons = store.StateTrusted, "", nil
		st.LastTrusted = now
	}
	res.State, res.Kind, res.Reasons, res.LogOffset, res.Attestations = st.State, st.Kind, st.Reasons, st.Progress.LogOffset, st.Attestations
	rebooted := app != nil && app.Reset || se != nil && se.Reboot
	if rebooted {
		r.v.log.Info("agent rebooted: attesting its new boot from the start", "agent", a.ID)
	}
	if st.State != r.status.State || !reflect.DeepEqual(st.Reasons, r.status.Reasons) {
		r.v.log.Info("agent state", "agent", a.ID, "state", st.State, "reasons", st.Reasons)
	}
	// Events (with a signed result) only on changes: not on the path of
	// every attestation.
	var evs []store.Event
	if rebooted {
		evs = r.event(evs, EventReboot, st, now)
	}
	if st.State != r.status.State || st.Kind != r.status.Kind {
		typ := EventFailed
		if st.State == store.StateTrusted {
			typ = EventTrusted
		}
		evs = r.event(evs, typ, st, now)
	}
	r.status = st
	r.v.m.attested(&st)
	select {
	case r.v.writes <- store.Update{AgentID: a.ID, Created: a.Created, Status: st, Result: res, Events: evs, Heartbeat: r.v.o.HistoryHeartbeat}:
	case <-ctx.Done():
	}
	return st.Kind == store.KindSecurity
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
	p := &Appraiser{AK: r.ak, Bank: crypto.SHA256, LogPCR: r.agent.LogPCR, BootPCRs: bootPCRs, Policy: pol, Now: r.v.o.Now(),
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
