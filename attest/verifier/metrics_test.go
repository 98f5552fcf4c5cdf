// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/storetest"
)

// scrape returns the verifier's metrics as name{labels} → value.
func scrape(t *testing.T, v *verifier.Verifier) map[string]float64 {
	t.Helper()
	var b bytes.Buffer
	if err := v.WriteMetrics(context.Background(), &b); err != nil {
		t.Fatalf("WriteMetrics: %v", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics line %q: no value", line)
		}
		f, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		if _, dup := out[line[:i]]; dup {
			t.Fatalf("metrics line %q twice", line[:i])
		}
		out[line[:i]] = f
	}
	return out
}

// TestMetrics (issue 17 item 4): the counters move with real
// attestations of a swtpm agent: trusted attestations, then a policy
// failure counted under its reason; agents by state from the store; the
// lateness and store-write histograms fill; a failing store counts its
// write errors and the results it holds back in the queue.
func TestMetrics(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, evil := filepath.Join(dir, "ok1"), filepath.Join(dir, "evil")
	a.measure(ok1)
	var flaky *storetest.Flaky
	tv := startVerifierWith(t, "", func(o *verifier.Options) {
		flaky = storetest.NewFlaky(o.Store)
		o.Store = flaky
	})
	m := scrape(t, tv.v)
	if m[`intact_verifier_attestations_total{outcome="trusted"}`] != 0 || m[`intact_verifier_agents{state="trusted"}`] != 0 {
		t.Fatalf("metrics before any agent: %v", m)
	}
	tv.enroll(a, "a1", policyFor(ok1))
	tv.wait("a1", 20*time.Second, "trusted", state(store.StateTrusted))
	// at least three trusted attestations
	if !testenv.Until(30*time.Second, func() bool { return scrape(t, tv.v)[`intact_verifier_attestations_total{outcome="trusted"}`] >= 3 }) {
		t.Fatalf("trusted attestations not counted: %v", scrape(t, tv.v))
	}
	// The store's counts are cached for an interval: wait until they
	// show the agent (0 trusted before it was enrolled).
	testenv.Until(30*time.Second, func() bool { return scrape(t, tv.v)[`intact_verifier_agents{state="trusted"}`] == 1 })
	m = scrape(t, tv.v)
	for k, want := range map[string]float64{
		`intact_verifier_agents{state="trusted"}`:         1,
		`intact_verifier_agents{state="failed"}`:          0,
		`intact_verifier_attesting`:                       1,
		`intact_verifier_failures_total{reason="policy"}`: 0,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	n := m[`intact_verifier_attestations_total{outcome="trusted"}`]
	if late := m[`intact_verifier_attestation_late_seconds_count`]; late < n {
		t.Errorf("lateness observed %v times, for %v attestations", late, n)
	}
	if inf := m[`intact_verifier_attestation_late_seconds_bucket{le="+Inf"}`]; inf != m[`intact_verifier_attestation_late_seconds_count`] {
		t.Errorf("+Inf bucket %v != count %v", inf, m[`intact_verifier_attestation_late_seconds_count`])
	}
	if m[`intact_verifier_store_write_seconds_count`] < 1 || m[`intact_verifier_store_write_seconds_sum`] <= 0 {
		t.Errorf("store writes not observed: %v", m)
	}

	// A failing store: write errors counted, results held in the queue.
	flaky.FailNext(1 << 30)
	if !testenv.Until(30*time.Second, func() bool {
		m = scrape(t, tv.v)
		return m[`intact_verifier_store_write_errors_total`] >= 2 && m[`intact_verifier_write_queue`] >= 1
	}) {
		t.Fatalf("failing store not seen in the metrics: errors %v, queue %v", m[`intact_verifier_store_write_errors_total`], m[`intact_verifier_write_queue`])
	}
	flaky.FailNext(0)
	if !testenv.Until(30*time.Second, func() bool { return scrape(t, tv.v)[`intact_verifier_write_queue`] == 0 }) {
		t.Fatalf("write queue not drained after the store recovered")
	}

	// A policy failure: counted by outcome and reason, and in the store.
	a.measure(evil)
	tv.wait("a1", 20*time.Second, "failed", state(store.StateFailed))
	time.Sleep(2 * interval) // time under test: two intervals in which the failure is not counted again (and the cached store counts expire)
	m = scrape(t, tv.v)
	// (an operational failure, a quote timing out on a loaded machine,
	// would count too: failed attestations are the sum of the reasons)
	if m[`intact_verifier_failures_total{reason="policy"}`] != 1 {
		t.Errorf("policy failure not counted once: %v", m)
	}
	if f, sum := m[`intact_verifier_attestations_total{outcome="failed"}`], m[`intact_verifier_failures_total{reason="policy"}`]+m[`intact_verifier_failures_total{reason="operational"}`]; f != sum || f < 1 {
		t.Errorf("failed attestations %v, failures by reason %v", f, sum)
	}
	if m[`intact_verifier_agents{state="failed"}`] != 1 || m[`intact_verifier_agents{state="trusted"}`] != 0 {
		t.Errorf("agents by state after the failure: %v", m)
	}
	if _, ok := m[`intact_verifier_leases{replica="x"}`]; ok {
		t.Errorf("leases on a store of one verifier")
	}
}
