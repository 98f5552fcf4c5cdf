// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/internal/tpmtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The real verifier on PostgreSQL (--db-file): an agent on swtpm enrolls
// and is trusted; a restarted verifier finds it in the database; a
// password on the command line is refused.
func TestServePostgres(t *testing.T) {
	dsn := pgtest.NewDB(t)
	dir := t.TempDir()
	vbin, abin := buildBinaries(t, dir)
	dsnFile := filepath.Join(dir, "dsn")
	os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600)

	sw := tpmtest.Start(t, tpmtest.Options{EKCert: true})
	cmd := exec.Command(vbin, "serve", "--state", filepath.Join(dir, "v0"), "--ek-ca", sw.EKCA, "--db", "postgres://intact:secret@127.0.0.1/x")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "--db-file") || strings.Contains(string(out), "secret") {
		t.Fatalf("a password on the command line: exit %d (%v): %s", cmd.ProcessState.ExitCode(), err, out)
	}

	agentState, vstate := filepath.Join(dir, "agent"), filepath.Join(dir, "verifier")
	list := filepath.Join(dir, "measurements")
	ok1 := filepath.Join(dir, "ok1")
	os.WriteFile(ok1, []byte("ok1"), 0o755)
	runBinary(t, 0, abin, "measure", "--tpm", sw.Spec(), "--list", list, ok1)
	ag := start(t, abin, "serve", "--tpm", sw.Spec(), "--state", agentState, "--list", list, "--listen", "127.0.0.1:0")
	defer ag.stop(t)
	var agentAddr string
	waitFor(t, 20*time.Second, "the agent's address", func() bool {
		b, err := os.ReadFile(filepath.Join(agentState, "addr"))
		agentAddr = strings.TrimSpace(string(b))
		return err == nil && agentAddr != ""
	})
	startVerifier := func(extra ...string) (*daemon, []string) {
		v := start(t, vbin, append([]string{"serve", "--state", vstate, "--ek-ca", sw.EKCA, "--db-file", dsnFile, "--listen", "127.0.0.1:0", "--interval", e2eInterval.String()}, extra...)...)
		var m []string
		waitFor(t, 20*time.Second, "the verifier's address", func() bool {
			m = addrRE.FindStringSubmatch(v.out.String())
			return m != nil
		})
		return v, []string{"--state", vstate, "--server", "https://" + m[1]}
	}
	vd, client := startVerifier()
	show := func(client []string, id string) *verifier.AgentView {
		out, _ := exec.Command(vbin, append(client, "agents", "show", "--json", id)...).Output()
		var v verifier.AgentView
		json.Unmarshal(out, &v)
		return &v
	}
	pfile := filepath.Join(dir, "policy.json")
	os.WriteFile(pfile, []byte(fmt.Sprintf(`{"intact_runtime_policy":1,"name":"pg","digests":{%q:[%q]}}`, ok1, fileSum(t, ok1))), 0o644)
	runBinary(t, 0, vbin, append(client, "policy", "add", "pg", pfile)...)
	runBinary(t, 0, vbin, append(client, "agents", "add", "pghost", agentAddr, "--policy", "pg", "--cert", filepath.Join(agentState, "tls.crt"))...)
	waitFor(t, 2*e2eInterval+10*time.Second, "trusted on postgres", func() bool { return show(client, "pghost").State == "trusted" })

	vd.stop(t)
	vd, client = startVerifier("--replica", "r1", "--metrics-listen", "127.0.0.1:0")
	waitFor(t, 10*time.Second, "the agent again after a restart", func() bool {
		v := show(client, "pghost")
		return v.State == "trusted" && v.Attestations > 1
	})

	// Metrics (issue 17 item 4): attestations counted, the agent by
	// state and the lease replica r1 holds, from the shared store.
	var maddr []string
	waitFor(t, 10*time.Second, "the metrics address", func() bool {
		maddr = metricsRE.FindStringSubmatch(vd.out.String())
		return maddr != nil
	})
	var body string
	waitFor(t, 20*time.Second, "metrics with the lease and attestations", func() bool {
		resp, err := http.Get(maddr[1])
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		n := 0
		fmt.Sscanf(metricLine(body, `intact_verifier_attestations_total{outcome="trusted"}`), "%d", &n)
		return resp.StatusCode == 200 && n >= 1 &&
			metricLine(body, `intact_verifier_leases{replica="r1"}`) == "1" &&
			metricLine(body, `intact_verifier_agents{state="trusted"}`) == "1" &&
			metricLine(body, `intact_verifier_replica_agents{replica="r1",state="trusted"}`) == "1" &&
			metricLine(body, `intact_verifier_unleased_agents`) == "0" &&
			metricLine(body, `intact_verifier_attesting`) == "1"
	})
	t.Logf("metrics:\n%s", body)
}

var metricsRE = regexp.MustCompile(`"serving metrics" addr=(http://\S+)`)

// metricLine returns the value of the sample named key in a Prometheus
// text body ("" if absent).
func metricLine(body, key string) string {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, key+" "); ok {
			return v
		}
	}
	return ""
}
