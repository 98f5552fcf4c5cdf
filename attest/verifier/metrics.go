// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intactsec/intact/store"
)

// Metrics: counters and histograms the runners and the writer update
// with atomics (no lock, no allocation per attestation), written in
// Prometheus text format by WriteMetrics. The label sets are bounded:
// outcomes and failure reasons come from fixed lists ("other" for
// anything else), so no agent can grow the scrape.

// outcomes are the states an attestation ends in.
var outcomes = [...]string{store.StateTrusted, store.StateFailed, store.StateGap, store.StateUnreachable, "other"}

// failureReasons are the reasons failures are counted by: the security
// reasons (the first word of the failure's reason), "unreachable" (no
// answer), then "operational" and "other".
var failureReasons = [...]string{
	ReasonAK, ReasonQuoteSignature, ReasonQuoteNonce, ReasonQuoteMalformed, ReasonQuoteSelection,
	ReasonPCRDigest, ReasonClock, ReasonLogOffset, ReasonLogMalformed, ReasonLogTemplateHash,
	ReasonLogReplay, ReasonBootAggregate, ReasonBootLog, ReasonPolicy, ReasonEnrollment,
	ReasonDuplicateTPM, ReasonLogPCR, ReasonBootPolicy, ReasonEKUntrusted, ReasonGap,
	store.StateUnreachable, store.KindOperational, "other",
}

// Histogram bounds, in seconds.
var (
	lateBounds  = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30}
	writeBounds = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
)

type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1: the last is +Inf
	sumNS  atomic.Int64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, s) // first bound >= s
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

func (h *histogram) write(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n", name, cum)
	fmt.Fprintf(w, "%s_sum %g\n%s_count %d\n", name, float64(h.sumNS.Load())/1e9, name, cum)
}

type metrics struct {
	outcomes  [len(outcomes)]atomic.Uint64
	failures  [len(failureReasons)]atomic.Uint64
	late      *histogram // how late each attestation started against its schedule
	write     *histogram // one batch saved in the store
	writeErrs atomic.Uint64
	fenced    atomic.Uint64 // updates the lease fence dropped (agents read again)
	pending   atomic.Int64  // updates in the writer's batch, not yet stored

	mu        sync.Mutex // the cached store counts
	countedAt time.Time
	counts    *storeCounts
}

// storeCounts are the metrics read from the store (CountAgents, and
// Replicas on a shared store).
type storeCounts struct {
	byState   map[string]int            // every agent, by state
	byReplica map[string]map[string]int // on a shared store: the live lease holder -> state -> agents
	unleased  int                       // on a shared store: agents no replica holds a live lease of
	leases    map[string]int            // on a shared store: live replicas -> leases held
}

func newMetrics() *metrics {
	return &metrics{late: newHistogram(lateBounds), write: newHistogram(writeBounds)}
}

// attested counts one attestation's outcome (and reason, if it failed).
func (m *metrics) attested(st *store.Status) {
	i := len(outcomes) - 1
	for j, o := range outcomes[:len(outcomes)-1] {
		if st.State == o {
			i = j
			break
		}
	}
	m.outcomes[i].Add(1)
	if st.State == store.StateTrusted {
		return
	}
	m.failures[failureIndex(st)].Add(1)
}

func failureIndex(st *store.Status) int {
	if st.Kind == store.KindOperational {
		return len(failureReasons) - 2
	}
	if st.State == store.StateUnreachable {
		return len(failureReasons) - 3
	}
	if len(st.Reasons) > 0 {
		r, _, _ := strings.Cut(st.Reasons[0], ":")
		for j, fr := range failureReasons[:len(failureReasons)-3] {
			if r == fr {
				return j
			}
		}
	}
	return len(failureReasons) - 1
}

// countsMaxAge bounds how often a scrape reads the store (every agent's
// state, the replicas' leases): scrapes within an interval, or
// countsMaxAge if shorter, get the cached counts.
const countsMaxAge = 5 * time.Second

// WriteMetrics writes the verifier's metrics in Prometheus text format:
// attestations by outcome, failures by reason, how late attestations
// started (histogram), the store's write latency (histogram) and the
// writer's queue, agents by state (from the store, one aggregate query at
// most once an interval or 5s) and, on a store replicas share, agents by
// the replica holding their lease and state, those no replica holds, and
// the leases each live replica holds.
func (v *Verifier) WriteMetrics(ctx context.Context, w io.Writer) error {
	m := v.m
	sc, err := v.storeCounts(ctx)
	fmt.Fprintf(w, "# HELP intact_verifier_attestations_total Attestations this verifier made, by outcome.\n# TYPE intact_verifier_attestations_total counter\n")
	for i, o := range outcomes {
		fmt.Fprintf(w, "intact_verifier_attestations_total{outcome=%q} %d\n", o, m.outcomes[i].Load())
	}
	fmt.Fprintf(w, "# HELP intact_verifier_failures_total Failed attestations, by reason (a security reason, or operational).\n# TYPE intact_verifier_failures_total counter\n")
	for i, r := range failureReasons {
		fmt.Fprintf(w, "intact_verifier_failures_total{reason=%q} %d\n", r, m.failures[i].Load())
	}
	m.late.write(w, "intact_verifier_attestation_late_seconds", "How late each attestation started against its schedule.")
	m.write.write(w, "intact_verifier_store_write_seconds", "Time to save one batch of attestation results in the store.")
	fmt.Fprintf(w, "# HELP intact_verifier_store_write_errors_total Batches the store failed to save (kept and tried again).\n# TYPE intact_verifier_store_write_errors_total counter\nintact_verifier_store_write_errors_total %d\n", m.writeErrs.Load())
	fmt.Fprintf(w, "# HELP intact_verifier_fenced_writes_total Agents whose results the lease fence dropped (their leases lapsed or moved to another replica); those still held are read again and attested from their stored status.\n# TYPE intact_verifier_fenced_writes_total counter\nintact_verifier_fenced_writes_total %d\n", m.fenced.Load())
	fmt.Fprintf(w, "# HELP intact_verifier_write_queue Attestation results waiting to be stored.\n# TYPE intact_verifier_write_queue gauge\nintact_verifier_write_queue %d\n", int64(len(v.writes))+m.pending.Load())
	v.mu.Lock()
	n := len(v.runners)
	v.mu.Unlock()
	fmt.Fprintf(w, "# HELP intact_verifier_attesting Agents this verifier (replica) attests.\n# TYPE intact_verifier_attesting gauge\nintact_verifier_attesting %d\n", n)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# HELP intact_verifier_agents Agents in the store, by state.\n# TYPE intact_verifier_agents gauge\n")
	for _, s := range sortedKeys(sc.byState) {
		fmt.Fprintf(w, "intact_verifier_agents{state=%q} %d\n", s, sc.byState[s])
	}
	if sc.leases != nil {
		fmt.Fprintf(w, "# HELP intact_verifier_replica_agents Agents by the replica holding their lease, and state.\n# TYPE intact_verifier_replica_agents gauge\n")
		for _, r := range sortedMapKeys(sc.byReplica) {
			for _, s := range sortedKeys(sc.byReplica[r]) {
				fmt.Fprintf(w, "intact_verifier_replica_agents{replica=\"%s\",state=%q} %d\n", labelEscaper.Replace(r), s, sc.byReplica[r][s])
			}
		}
		fmt.Fprintf(w, "# HELP intact_verifier_unleased_agents Agents no live replica holds a lease of (attested by none until one takes them).\n# TYPE intact_verifier_unleased_agents gauge\nintact_verifier_unleased_agents %d\n", sc.unleased)
		fmt.Fprintf(w, "# HELP intact_verifier_leases Agents' leases each live replica holds.\n# TYPE intact_verifier_leases gauge\n")
		for _, r := range sortedKeys(sc.leases) {
			fmt.Fprintf(w, "intact_verifier_leases{replica=\"%s\"} %d\n", labelEscaper.Replace(r), sc.leases[r])
		}
	}
	return nil
}

// storeCounts returns the counts read from the store, at most every
// countsMaxAge: the agents by state (one aggregate query, CountAgents)
// and, on a shared store, by lease holder, and the replicas' leases.
func (v *Verifier) storeCounts(ctx context.Context) (*storeCounts, error) {
	m := v.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts != nil && time.Since(m.countedAt) < min(countsMaxAge, v.o.Interval) {
		return m.counts, nil
	}
	cs, err := v.o.Store.CountAgents(ctx)
	if err != nil {
		return nil, fmt.Errorf("metrics: counting agents: %w", err)
	}
	sc := &storeCounts{byState: map[string]int{store.StateEnrolled: 0, store.StateTrusted: 0, store.StateFailed: 0, store.StateUnreachable: 0}}
	for _, c := range cs {
		sc.byState[c.State] += c.Agents
	}
	if v.o.Leases != nil {
		sc.byReplica = map[string]map[string]int{}
		for _, c := range cs {
			if c.Replica == "" {
				sc.unleased += c.Agents
				continue
			}
			if sc.byReplica[c.Replica] == nil {
				sc.byReplica[c.Replica] = map[string]int{}
			}
			sc.byReplica[c.Replica][c.State] += c.Agents
		}
		if sc.leases, err = v.o.Leases.Replicas(ctx, v.leaseTTL()); err != nil {
			return nil, fmt.Errorf("metrics: replicas: %w", err)
		}
		if sc.leases == nil {
			sc.leases = map[string]int{}
		}
	}
	m.counts, m.countedAt = sc, time.Now()
	return sc, nil
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// labelEscaper escapes a label value (a replica's name is the operator's).
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
