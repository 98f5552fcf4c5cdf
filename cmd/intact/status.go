// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/intactsec/intact/enforce"
)

const statusUsage = `
Usage: intact status [--socket PATH] [--json]

Asks the running intactd, over its control socket, for its state:
decisions, denials (and, in log mode, accesses that would have been
denied), cache hits, queue depth and decision latency.
`

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
	var s enforce.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("intactd status: %v", err)
	}
	printStatus(e.stdout, &s)
	return nil
}

func printStatus(w io.Writer, s *enforce.Status) {
	st := &s.Stats
	health := "healthy"
	if !s.Healthy {
		health = "STALLED"
	}
	fmt.Fprintf(w, "intactd %s, pid %d, up %s, %s\n", s.Version, s.Pid, time.Since(s.Started).Round(time.Second), health)
	fmt.Fprintf(w, "mode:          %s\n", st.Mode)
	fmt.Fprintf(w, "watching:      %v\n", s.Watch)
	if len(s.Uncovered) > 0 {
		fmt.Fprintf(w, "NOT enforced:  %v (other file systems mounted under a watched path)\n", s.Uncovered)
	}
	fmt.Fprintf(w, "policy:        %s (%d rules)\n", s.Policy, s.Rules)
	fmt.Fprintf(w, "decisions:     %d (events %d, own %d)\n", st.Decisions, st.Events, st.SelfEvents)
	fmt.Fprintf(w, "denials:       %d\n", st.Denials)
	if st.Mode != string(enforce.Enforce) || st.WouldDeny != 0 {
		// log mode's count; in enforce mode there is nothing to report
		fmt.Fprintf(w, "would deny:    %d (log mode)\n", st.WouldDeny)
	}
	fmt.Fprintf(w, "deadline hits: %d, errors %d\n", st.Timeouts, st.Errors)
	fmt.Fprintf(w, "cache:         %d hits, %d entries, %d kernel marks, %d invalidations\n", st.CacheHits, st.CacheEntries, st.IgnoreMarks, st.Invalidations)
	fmt.Fprintf(w, "leases:        %d held, %d broken by writers, %d refused\n", st.Leases, st.LeaseBreaks, st.LeaseRefused)
	fmt.Fprintf(w, "open writers:  %d decisions on files open for write (never cached)\n", st.Writers)
	fmt.Fprintf(w, "measurements:  %d (%d violations)\n", st.Measurements, st.Violations)
	fmt.Fprintf(w, "queue depth:   %d (pending %d)\n", st.QueueDepth, st.Pending)
	if st.ReaderStallSecs > 0 || s.EventFDErrors > 0 {
		fmt.Fprintf(w, "reader:        blocked in the kernel for %s; %d accesses denied by the kernel (event fd not openable)\n", secs(st.ReaderStallSecs), s.EventFDErrors)
	}
	fmt.Fprintf(w, "latency:       mean %s, p99 <= %s\n", secs(st.LatencyMeanSecs), secs(st.LatencyP99Secs))
}

func secs(s float64) string { return time.Duration(s * float64(time.Second)).String() }
