// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

type metrics struct {
	events, self, decisions, denials, wouldDeny    atomic.Int64
	timeouts, errors, respondErrors, cacheHits     atomic.Int64
	ignoreMarks, ignoreErrors, invalidations       atomic.Int64
	measurements, large                            atomic.Int64
	writers, violations, leaseRefused, leaseBreaks atomic.Int64
	latency, measureLatency                        histogram
}

// latency buckets, seconds.
var buckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type histogram struct {
	mu     sync.Mutex
	counts [16]uint64 // len(buckets)+1, last is +Inf
	sum    float64
	n      uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	i := 0
	for i < len(buckets) && s > buckets[i] {
		i++
	}
	h.counts[i]++
	h.sum += s
	h.n++
}

func (h *histogram) snapshot() (counts [16]uint64, sum float64, n uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts, h.sum, h.n
}

// Status is intactd's reply to GET /v1/status on its control socket, which
// "intact status" prints.
type Status struct {
	Version  string    `json:"version"`
	Pid      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Watch    []string  `json:"watch"`
	Policy   string    `json:"policy"`
	Rules    int       `json:"rules"`
	Healthy  bool      `json:"healthy"`
	Overflow int64     `json:"queue_overflows"`
	Stats    Stats     `json:"stats"`
	// Uncovered lists mounts of other file systems under a watched path:
	// not enforced (docs/intactd.md, "What is covered").
	Uncovered []string `json:"uncovered_mounts,omitempty"`
	// EventFDErrors counts permission events whose fd the kernel could
	// not open for intactd (EWOULDBLOCK: a lease; EMFILE, ENFILE): the
	// kernel denied those accesses itself.
	EventFDErrors int64 `json:"event_fd_errors"`
}

// Stats is a snapshot of the engine's counters (intact status).
type Stats struct {
	Mode          string `json:"mode"`
	Events        int64  `json:"events"`
	SelfEvents    int64  `json:"self_events"`
	Decisions     int64  `json:"decisions"`
	Denials       int64  `json:"denials"`
	WouldDeny     int64  `json:"would_deny"`
	Timeouts      int64  `json:"timeouts"`
	Errors        int64  `json:"errors"`
	CacheHits     int64  `json:"cache_hits"`
	CacheEntries  int    `json:"cache_entries"`
	IgnoreMarks   int64  `json:"kernel_cache_marks"`
	Invalidations int64  `json:"invalidations"`
	Measurements  int64  `json:"measurements"`
	// LargeFiles counts decisions on large files not yet cached, taken
	// off the decision workers.
	LargeFiles int64 `json:"large_file_decisions"`
	// Writers counts decisions that found the file open for write.
	Writers    int64 `json:"open_writers"`
	Violations int64 `json:"violations"`
	// Leases held on kernel-cached files; breaks: opens for write of
	// them; refused: kernel-cache attempts without a lease (no mark).
	Leases       int   `json:"leases"`
	LeaseBreaks  int64 `json:"lease_breaks"`
	LeaseRefused int64 `json:"lease_refused"`
	QueueDepth   int   `json:"queue_depth"`
	Pending      int   `json:"pending"`
	// ReaderStallSecs: how long the event reader has been blocked in the
	// kernel (0 when idle); above the deadline the daemon is unhealthy.
	ReaderStallSecs float64 `json:"reader_stall_seconds"`
	LatencyMeanSecs float64 `json:"decision_latency_mean_seconds"`
	LatencyP99Secs  float64 `json:"decision_latency_p99_seconds"`
}

// Stats returns the current counters.
func (e *Engine) Stats() Stats {
	counts, sum, n := e.m.latency.snapshot()
	s := Stats{
		Mode:   string(e.cfg.Mode),
		Events: e.m.events.Load(), SelfEvents: e.m.self.Load(),
		Decisions: e.m.decisions.Load(), Denials: e.m.denials.Load(), WouldDeny: e.m.wouldDeny.Load(),
		Timeouts: e.m.timeouts.Load(), Errors: e.m.errors.Load(), CacheHits: e.m.cacheHits.Load(),
		CacheEntries: e.cache.len(), IgnoreMarks: e.m.ignoreMarks.Load(),
		Invalidations: e.m.invalidations.Load(), Measurements: e.m.measurements.Load(), LargeFiles: e.m.large.Load(),
		QueueDepth: len(e.queue), ReaderStallSecs: e.readStall().Seconds(),
		Writers: e.m.writers.Load(), Violations: e.m.violations.Load(),
		Leases: e.leases.len(), LeaseBreaks: e.m.leaseBreaks.Load(), LeaseRefused: e.m.leaseRefused.Load(),
	}
	e.oldest.Range(func(_, _ any) bool { s.Pending++; return true })
	if n > 0 {
		s.LatencyMeanSecs = sum / float64(n)
		s.LatencyP99Secs = quantile(counts, n, 0.99)
	}
	return s
}

// quantile returns the upper bound of the bucket holding quantile q.
func quantile(counts [16]uint64, n uint64, q float64) float64 {
	want := uint64(math.Ceil(q * float64(n)))
	var acc uint64
	for i, c := range counts {
		acc += c
		if acc >= want && i < len(buckets) {
			return buckets[i]
		}
	}
	return buckets[len(buckets)-1]
}

// WriteMetrics writes the counters in the Prometheus text format.
func (e *Engine) WriteMetrics(w io.Writer) error {
	s := e.Stats()
	counters := []struct {
		name, help string
		v          int64
	}{
		{"intactd_events_total", "Permission events read.", s.Events},
		{"intactd_self_events_total", "Events of intactd's own process, allowed at once.", s.SelfEvents},
		{"intactd_decisions_total", "Events answered after a decision.", s.Decisions},
		{"intactd_denials_total", "Events answered with deny.", s.Denials},
		{"intactd_would_deny_total", "Accesses allowed in log mode that enforce mode would deny.", s.WouldDeny},
		{"intactd_deadline_expired_total", "Events answered with the fail verdict at the deadline.", s.Timeouts},
		{"intactd_decision_errors_total", "Decisions that failed for an operational reason.", s.Errors},
		{"intactd_cache_hits_total", "Decisions served from the verdict cache.", s.CacheHits},
		{"intactd_kernel_cache_marks_total", "In-kernel ignore marks added for verified files.", s.IgnoreMarks},
		{"intactd_invalidations_total", "Cache invalidations (writes, attribute changes).", s.Invalidations},
		{"intactd_measurements_total", "Measurements appended and extended.", s.Measurements},
		{"intactd_large_file_decisions_total", "Decisions on large files taken off the decision workers.", s.LargeFiles},
		{"intactd_open_writers_total", "Decisions on files open for write (never cached).", s.Writers},
		{"intactd_violations_total", "Measurement violations recorded (open_writers).", s.Violations},
		{"intactd_lease_breaks_total", "Opens for write of kernel-cached files (their cache dropped).", s.LeaseBreaks},
		{"intactd_lease_refused_total", "Kernel-cache attempts refused for want of a read lease.", s.LeaseRefused},
	}
	for _, c := range counters {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "# HELP intactd_queue_depth Events waiting for a worker.\n# TYPE intactd_queue_depth gauge\nintactd_queue_depth %d\n", s.QueueDepth)
	fmt.Fprintf(w, "# HELP intactd_pending Events read and not yet answered.\n# TYPE intactd_pending gauge\nintactd_pending %d\n", s.Pending)
	fmt.Fprintf(w, "# HELP intactd_reader_stall_seconds How long the event reader has been blocked in the kernel.\n# TYPE intactd_reader_stall_seconds gauge\nintactd_reader_stall_seconds %g\n", s.ReaderStallSecs)
	fmt.Fprintf(w, "# HELP intactd_cache_entries Entries in the verdict cache.\n# TYPE intactd_cache_entries gauge\nintactd_cache_entries %d\n", s.CacheEntries)
	writeHistogram(w, "intactd_decision_latency_seconds", "Time from reading an event to answering it.", &e.m.latency)
	return writeHistogram(w, "intactd_measure_latency_seconds", "Time to append a measurement and extend the PCR.", &e.m.measureLatency)
}

func writeHistogram(w io.Writer, name, help string, h *histogram) error {
	counts, sum, n := h.snapshot()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var acc uint64
	for i, b := range buckets {
		acc += counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, acc)
	}
	_, err := fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, n, name, sum, name, n)
	return err
}
