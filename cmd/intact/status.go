package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

const statusUsage = `
Usage: intact status [--socket PATH] [--json]

Asks the running intactd, over its control socket, for its state:
decisions, denials (and, in log mode, accesses that would have been
denied), cache hits, queue depth and decision latency.
`

// daemonStatus mirrors intactd's GET /v1/status reply.
type daemonStatus struct {
	Version  string    `json:"version"`
	Pid      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Watch    []string  `json:"watch"`
	Policy   string    `json:"policy"`
	Rules    int       `json:"rules"`
	Healthy  bool      `json:"healthy"`
	Overflow int64     `json:"queue_overflows"`
	Stats    struct {
		Mode            string  `json:"mode"`
		Events          int64   `json:"events"`
		SelfEvents      int64   `json:"self_events"`
		Decisions       int64   `json:"decisions"`
		Denials         int64   `json:"denials"`
		WouldDeny       int64   `json:"would_deny"`
		Timeouts        int64   `json:"timeouts"`
		Errors          int64   `json:"errors"`
		CacheHits       int64   `json:"cache_hits"`
		CacheEntries    int     `json:"cache_entries"`
		IgnoreMarks     int64   `json:"kernel_cache_marks"`
		Invalidations   int64   `json:"invalidations"`
		Measurements    int64   `json:"measurements"`
		QueueDepth      int     `json:"queue_depth"`
		Pending         int     `json:"pending"`
		LatencyMeanSecs float64 `json:"decision_latency_mean_seconds"`
		LatencyP99Secs  float64 `json:"decision_latency_p99_seconds"`
	} `json:"stats"`
}

func cmdStatus(e *env, args []string) error {
	f := newFlags(e, "status", statusUsage)
	socket := f.String("socket", "/var/lib/intactd/intactd.sock", "intactd's control socket")
	asJSON := f.Bool("json", false, "print the daemon's JSON reply")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) > 0 {
		return usageErrorf("status", "unexpected argument %q", ops[0])
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		},
	}}
	resp, err := c.Get("http://intactd/v1/status")
	if err != nil {
		return withHint(fmt.Errorf("cannot reach intactd at %s: %v", *socket, err), "is intactd running? (systemctl status intactd)")
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("intactd status: %s %v", resp.Status, err)
	}
	if *asJSON {
		e.stdout.Write(body)
		return nil
	}
	var s daemonStatus
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("intactd status: %v", err)
	}
	printStatus(e.stdout, &s)
	return nil
}

func printStatus(w io.Writer, s *daemonStatus) {
	st := &s.Stats
	health := "healthy"
	if !s.Healthy {
		health = "STALLED"
	}
	fmt.Fprintf(w, "intactd %s, pid %d, up %s, %s\n", s.Version, s.Pid, time.Since(s.Started).Round(time.Second), health)
	fmt.Fprintf(w, "mode:          %s\n", st.Mode)
	fmt.Fprintf(w, "watching:      %v\n", s.Watch)
	fmt.Fprintf(w, "policy:        %s (%d rules)\n", s.Policy, s.Rules)
	fmt.Fprintf(w, "decisions:     %d (events %d, own %d)\n", st.Decisions, st.Events, st.SelfEvents)
	fmt.Fprintf(w, "denials:       %d\n", st.Denials)
	fmt.Fprintf(w, "would deny:    %d (log mode)\n", st.WouldDeny)
	fmt.Fprintf(w, "deadline hits: %d, errors %d\n", st.Timeouts, st.Errors)
	fmt.Fprintf(w, "cache:         %d hits, %d entries, %d kernel marks, %d invalidations\n", st.CacheHits, st.CacheEntries, st.IgnoreMarks, st.Invalidations)
	fmt.Fprintf(w, "measurements:  %d\n", st.Measurements)
	fmt.Fprintf(w, "queue depth:   %d (pending %d)\n", st.QueueDepth, st.Pending)
	fmt.Fprintf(w, "latency:       mean %s, p99 <= %s\n", secs(st.LatencyMeanSecs), secs(st.LatencyP99Secs))
}

func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }
