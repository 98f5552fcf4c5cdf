// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/fanotify/fantest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
)

const envVerifierBin = "INTACT_E2E_VERIFIER_BIN"

// verifierBinary builds intact-verifier once (in the parent).
func verifierBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envVerifierBin); p != "" {
		return p
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "intact-verifier")
	if out, err := exec.Command("go", "build", "-o", p, "github.com/intactsec/intact/cmd/intact-verifier").CombinedOutput(); err != nil {
		t.Fatalf("go build intact-verifier: %v\n%s", err, out)
	}
	os.Setenv(envVerifierBin, p)
	// dir goes with this test: a later run (go test -count=2) builds anew.
	t.Cleanup(func() { os.Unsetenv(envVerifierBin) })
	return p
}

var (
	agentAddrRE    = regexp.MustCompile(`"msg":"serving attestation agent","addr":"([^"]+)"`)
	verifierAddrRE = regexp.MustCompile(`intact-verifier serving" addr=(\S+)`)
)

// TestE2EAgent: intactd measures executions and serves the attestation
// agent; intact-verifier enrolls it, trusts it, and fails it naming the
// program when one outside the runtime policy runs.
func TestE2EAgent(t *testing.T) {
	vbin := verifierBinary(t)
	w := e2eWorld(t, "swtpm")
	if w == nil {
		return
	}
	sw := tpmtest.Start(t, tpmtest.Options{})
	good := w.binary("allowed", w.key)
	evil := w.binary("not-in-policy", w.key)
	w.start("measure func=BPRM_CHECK mask=MAY_EXEC\n", "--tpm", sw.Spec(), "--mode", "enforce", "--agent-listen", "127.0.0.1:0")
	m := agentAddrRE.FindStringSubmatch(w.log.String())
	if m == nil {
		t.Fatalf("no agent address in the log:\n%s", w.log)
	}
	agentAddr := m[1]
	w.wantRuns(good)

	// The verifier.
	vstate := filepath.Join(w.dir, "verifier")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The agent's TPM has no EK certificate: allowlist its EK, as the
	// quickstart does, with the hash "intact-verifier ek" reports.
	ekOut, err := fantest.Command(t, time.Minute, vbin, "ek", agentAddr, "--cert", filepath.Join(w.dir, "state", "agent", "tls.crt")).CombinedOutput()
	em := regexp.MustCompile(`ek-hash: +(sha256:[0-9a-f]{64})`).FindSubmatch(ekOut)
	if err != nil || em == nil {
		t.Fatalf("intact-verifier ek: %v: %s", err, ekOut)
	}
	ekAllow := filepath.Join(w.dir, "ek-allow")
	os.WriteFile(ekAllow, []byte(string(em[1])+" e2e-agent\n"), 0o644)
	v := exec.CommandContext(ctx, vbin, "serve", "--state", vstate, "--listen", "127.0.0.1:0", "--interval", "500ms",
		"--ek-allow", ekAllow)
	vlog := &lockedBuf{}
	v.Stdout, v.Stderr = vlog, vlog
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		v.Process.Kill()
		v.Wait()
		if t.Failed() {
			t.Logf("intact-verifier log:\n%s", vlog)
		}
	}()
	var vaddr string
	testenv.Until(30*time.Second, func() bool {
		if m := verifierAddrRE.FindStringSubmatch(vlog.String()); m != nil {
			vaddr = m[1]
		}
		return vaddr != ""
	})
	if vaddr == "" {
		t.Fatalf("verifier not serving:\n%s", vlog)
	}
	cli := func(args ...string) (string, error) {
		cmd := fantest.Command(t, time.Minute, vbin, append([]string{"--state", vstate, "--server", "https://" + vaddr}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	content, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	pol, _ := json.Marshal(map[string]any{"intact_runtime_policy": 1,
		"digests": map[string][]string{good: {"sha256:" + hex.EncodeToString(sum[:])}}})
	pfile := filepath.Join(w.dir, "runtime-policy.json")
	os.WriteFile(pfile, pol, 0o644)
	if out, err := cli("policy", "add", "p", pfile); err != nil {
		t.Fatalf("policy add: %v: %s", err, out)
	}
	if out, err := cli("agents", "add", "host", agentAddr, "--policy", "p", "--cert", filepath.Join(w.dir, "state", "agent", "tls.crt")); err != nil {
		t.Fatalf("agents add: %v: %s", err, out)
	}
	show := func() map[string]any {
		out, _ := cli("agents", "show", "--json", "host")
		var a map[string]any
		json.Unmarshal([]byte(out), &a)
		return a
	}
	waitState := func(state string) map[string]any {
		var a map[string]any
		if !testenv.Until(time.Minute, func() bool { a = show(); return a["state"] == state }) {
			t.Fatalf("agent not %s: %v", state, a)
		}
		return a
	}
	a := waitState("trusted")
	if a["log_offset"] != float64(3) { // boot_aggregate, boot id and the allowed program
		t.Fatalf("trusted with %v records verified, want 3", a["log_offset"])
	}
	w.wantRuns(evil)
	a = waitState("failed")
	rs, _ := json.Marshal(a["reasons"])
	if !strings.Contains(string(rs), evil) || !strings.Contains(string(rs), "not-in-policy") {
		t.Fatalf("failed with %s, want %s not-in-policy", rs, evil)
	}
	t.Logf("failed: %s", rs)
}
