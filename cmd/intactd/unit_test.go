// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unitKeys parses a systemd unit file into section -> key -> values.
func unitKeys(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: bad line %q", path, l)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

// TestUnitFile holds the shipped unit to what docs/intactd.md ("When
// intactd is not running") promises: started before sysinit.target once it
// enforces, restarted at once and for ever, watched by the watchdog; and
// the fail-closed boot drop-in requires it.
func TestUnitFile(t *testing.T) {
	u := unitKeys(t, filepath.Join(repoRoot, "dist/systemd/intactd.service"))
	want := map[string]map[string]string{
		"Unit":    {"DefaultDependencies": "no", "Before": "sysinit.target shutdown.target", "StartLimitIntervalSec": "0"},
		"Service": {"Type": "notify", "Restart": "always", "RestartSec": "200ms", "WatchdogSec": "10s", "OOMScoreAdjust": "-900"},
	}
	for sec, kv := range want {
		for k, v := range kv {
			if got := u[sec][k]; len(got) != 1 || got[0] != v {
				t.Errorf("intactd.service [%s] %s = %q, want %q", sec, k, got, v)
			}
		}
	}
	d := unitKeys(t, filepath.Join(repoRoot, "dist/systemd/intactd-required.conf"))
	if got := d["Unit"]["Requires"]; len(got) != 1 || got[0] != "intactd.service" {
		t.Errorf("intactd-required.conf [Unit] Requires = %q, want intactd.service", got)
	}
}
