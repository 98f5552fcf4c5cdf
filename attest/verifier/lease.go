// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"time"

	"github.com/intactsec/intact/store"
)

// Replicas: with Options.Leases, every replica runs leaseLoop; each agent
// is attested by the replica that holds its lease in the store. A lease
// lives one interval (at least leaseMinTTL) and is renewed three times an
// interval, so a replica that dies loses its agents to the others within
// about one interval plus a round; one that stops cleanly gives them up at
// once. Writes are fenced (store.Leaser.SaveAttestationsAs): a replica
// that lost a lease while paused cannot write over the new owner, so no
// attestation, state change or event is stored twice.

// leaseMinTTL keeps short test intervals from making leases flap on a
// loaded database.
const leaseMinTTL = time.Second

func (v *Verifier) leaseTTL() time.Duration { return max(v.o.Interval, leaseMinTTL) }

func (v *Verifier) leaseLoop(ctx context.Context) {
	ttl := v.leaseTTL()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	known := map[string]time.Time{} // leased agents this loop has read, and when
	for {
		v.leaseRound(ctx, ttl, known)
		select {
		case <-ctx.Done():
			return // Run releases the leases once the last results are stored
		case <-t.C:
		}
	}
}

// releaseLeases hands this replica's agents and receivers over at once (a
// clean stop), after its last results are stored: released first, the
// fence would drop them.
func (v *Verifier) releaseLeases() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.o.Leases.ReleaseLeases(ctx, v.o.Replica); err != nil {
		v.log.Warn("releasing leases", "replica", v.o.Replica, "err", err)
	}
}

// leaseRound renews, claims and gives up leases, and starts and stops
// runners to match.
// A leased agent found not to attest (a security failure) is read again
// every recheckRounds rounds: an operator may have reactivated it, on
// any replica.
const recheckRounds = 9

// leaseBulkRead: a lease round with more agents than this to read lists
// every agent once rather than reading each.
const leaseBulkRead = 32

func (v *Verifier) leaseRound(ctx context.Context, ttl time.Duration, known map[string]time.Time) {
	rctx, cancel := context.WithTimeout(ctx, ttl)
	defer cancel()
	owned, err := v.o.Leases.Lease(rctx, v.o.Replica, ttl)
	if err != nil {
		if ctx.Err() == nil {
			// Without a renewal the leases lapse and others take over;
			// the fenced writes keep this replica from writing meanwhile.
			v.log.Error("lease round failed", "replica", v.o.Replica, "err", err)
		}
		return
	}
	want := make(map[string]bool, len(owned))
	for _, id := range owned {
		want[id] = true
	}
	v.mu.Lock()
	var gone []string
	for id := range v.runners {
		if !want[id] {
			gone = append(gone, id)
		}
	}
	var fresh []string
	now := v.o.Now()
	for _, id := range owned {
		at, seen := known[id]
		r := v.runners[id]
		if !seen || (r == nil || r.ended.Load()) && now.Sub(at) >= recheckRounds*ttl/3 {
			fresh = append(fresh, id)
		}
	}
	v.mu.Unlock()
	for id := range known {
		if !want[id] {
			delete(known, id)
		}
	}
	for _, id := range gone {
		v.stop(id)
	}
	if len(gone) > 0 {
		v.log.Info("leases given up or lost", "replica", v.o.Replica, "agents", len(gone))
	}
	// Many agents to read (a replica joined or died): one read of every
	// agent instead of one query each, which at thousands of agents
	// outlasted the round's deadline.
	var listed map[string]*store.Agent
	if len(fresh) > leaseBulkRead {
		if all, err := v.o.Store.ListAgents(rctx); err == nil {
			listed = make(map[string]*store.Agent, len(all))
			for _, a := range all {
				listed[a.ID] = a
			}
		}
	}
	started := 0
	for i, id := range fresh {
		_, seen := known[id]
		first := !seen
		known[id] = now
		a, err := listed[id], error(nil)
		if a == nil {
			a, err = v.o.Store.GetAgent(rctx, id)
		}
		if err != nil {
			// read again next round: a known agent is never started
			delete(known, id)
			v.log.Warn("leased agent unreadable; tried again next round", "agent", id, "err", err)
			continue
		}
		// spread over a third of an interval: taken-over agents are
		// attested again within two intervals of their last attestation
		if a.State == store.StateFailed && a.Kind == store.KindSecurity {
			continue // not attested until reactivated or enrolled again
		}
		v.mu.Lock()
		r := v.runners[id]
		v.mu.Unlock()
		if r != nil && r.ended.Load() {
			v.stop(id) // the runner a security failure stopped: reactivated since
		}
		v.start(a, ttl/3*time.Duration(i)/time.Duration(len(fresh)))
		if first {
			started++
		}
	}
	if started > 0 {
		v.log.Info("leases taken", "replica", v.o.Replica, "agents", started, "holding", len(owned))
	}
}

// claim takes the lease of a new agent (enrolled by this replica); without
// leases every agent is this verifier's.
func (v *Verifier) claim(ctx context.Context, id string) bool {
	if v.o.Leases == nil {
		return true
	}
	ok, err := v.o.Leases.ClaimAgent(ctx, v.o.Replica, id, v.leaseTTL())
	if err != nil {
		v.log.Warn("claiming the lease of a new agent; the lease loop will", "agent", id, "err", err)
	}
	return ok && err == nil
}

// save stores a batch of attestations, fenced by the leases when the store
// is shared; it returns the agents whose updates the fence dropped.
func (v *Verifier) save(ctx context.Context, batch []store.Update) ([]string, error) {
	if v.o.Leases != nil {
		return v.o.Leases.SaveAttestationsAs(ctx, v.o.Replica, batch)
	}
	return nil, v.o.Store.SaveAttestations(ctx, batch)
}
