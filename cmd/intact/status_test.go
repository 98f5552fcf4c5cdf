// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/enforce"
)

func TestStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		var s enforce.Status
		s.Pid, s.Healthy, s.Watch = 42, true, []string{"/usr"}
		s.Stats.Mode, s.Stats.Decisions, s.Stats.Denials, s.Stats.CacheHits = "enforce", 10, 2, 7
		s.Stats.QueueDepth, s.Stats.LatencyMeanSecs = 3, 0.0002
		json.NewEncoder(w).Encode(s)
	})}
	go srv.Serve(l)
	defer srv.Close()
	code, out, errs := runIntact("status", "--socket", sock)
	for _, want := range []string{"pid 42", "healthy", "decisions:     10", "denials:       2", "7 hits", "queue depth:   3", "mean 200µs"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d %s", code, errs)
	}
	// Enforce mode says nothing of log mode (the old code printed
	// "would deny: 0 (log mode)" whatever the mode); log mode does.
	if strings.Contains(out, "log mode") {
		t.Errorf("status in enforce mode mentions log mode:\n%s", out)
	}
	var logMode bytes.Buffer
	printStatus(&logMode, &enforce.Status{Stats: enforce.Stats{Mode: "log", WouldDeny: 5}})
	if !strings.Contains(logMode.String(), "would deny:    5 (log mode)") {
		t.Errorf("status in log mode:\n%s", logMode.String())
	}
	if code, out, _ := runIntact("status", "--socket", sock, "--json"); code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("--json = %d %q", code, out)
	}
	if code, _, errs := runIntact("status", "--socket", filepath.Join(t.TempDir(), "none")); code != 2 || !strings.Contains(errs, "cannot reach intactd") {
		t.Errorf("no daemon = %d %q", code, errs)
	}
}
