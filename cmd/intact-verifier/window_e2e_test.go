// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/tpmtest"
)

// The update window with the real binaries and the real clock: the
// operator makes a window with "intact policy window" and puts it into the
// running verifier with "intact-verifier policy add"; the agent's upgraded
// file runs inside the window (trusted); another file of the upgrade runs
// after the window ended (failed, naming it).
func TestEndToEndUpdateWindow(t *testing.T) {
	dir := t.TempDir()
	vbin, abin := buildBinaries(t, dir)
	ibin := filepath.Join(dir, "intact")
	if out, err := exec.Command("go", "build", "-o", ibin, "../intact").CombinedOutput(); err != nil {
		t.Fatalf("go build intact: %v\n%s", err, out)
	}
	sw := tpmtest.Start(t, tpmtest.Options{})
	agentState, vstate := filepath.Join(dir, "agent"), filepath.Join(dir, "verifier")
	list := filepath.Join(dir, "measurements")
	files := filepath.Join(dir, "files")
	os.Mkdir(files, 0o755)
	tool, lib := filepath.Join(files, "tool"), filepath.Join(files, "libtool.so")
	install := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	measure := func(paths ...string) {
		runBinary(t, 0, abin, append([]string{"measure", "--tpm", sw.Spec(), "--list", list}, paths...)...)
	}
	policyOf := func(name string, paths ...string) string {
		d := map[string][]string{}
		for _, p := range paths {
			d[p] = []string{fileSum(t, p)}
		}
		b, _ := json.Marshal(map[string]any{"intact_runtime_policy": 1, "name": name, "digests": d})
		f := filepath.Join(dir, name+".json")
		os.WriteFile(f, b, 0o644)
		return f
	}

	// Version 1 installed and running; the policy of version 1.
	install(tool, "tool 1.0")
	install(lib, "libtool 1.0")
	v1 := policyOf("v1", tool, lib)
	measure(tool, lib)
	// Version 2, built on a reference machine: its policy.
	install(tool, "tool 2.0")
	install(lib, "libtool 2.0")
	v2 := policyOf("v2", tool, lib)
	install(tool, "tool 1.0")
	install(lib, "libtool 1.0")

	start(t, abin, "serve", "--tpm", sw.Spec(), "--state", agentState, "--list", list, "--listen", "127.0.0.1:0")
	var agentAddr string
	waitFor(t, 20*time.Second, "the agent's address", func() bool {
		b, err := os.ReadFile(filepath.Join(agentState, "addr"))
		agentAddr = strings.TrimSpace(string(b))
		return err == nil && agentAddr != ""
	})
	ekAllow := filepath.Join(t.TempDir(), "ek-allow")
	os.WriteFile(ekAllow, []byte(sw.EKHash(t)+" window-swtpm\n"), 0o644)
	vd := start(t, vbin, "serve", "--state", vstate, "--listen", "127.0.0.1:0", "--interval", e2eInterval.String(),
		"--ek-allow", ekAllow)
	var m []string
	waitFor(t, 20*time.Second, "the verifier's address", func() bool {
		m = addrRE.FindStringSubmatch(vd.out.String())
		return m != nil
	})
	client := []string{"--state", vstate, "--server", "https://" + m[1]}
	cli := func(wantCode int, args ...string) string {
		return runBinary(t, wantCode, vbin, append(client, args...)...)
	}
	show := func() *verifier.AgentView {
		out, _ := exec.Command(vbin, append(client, "agents", "show", "--json", "host")...).Output()
		var v verifier.AgentView
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("agents show: %v: %q", err, out)
		}
		return &v
	}
	cli(0, "policy", "add", "fleet", v1)
	cli(0, "agents", "add", "host", agentAddr, "--policy", "fleet", "--cert", filepath.Join(agentState, "tls.crt"))
	waitFor(t, 10*time.Second, "trusted", func() bool { return show().State == "trusted" })

	// The window: v1 plus v2's digests for 20 seconds, into the running
	// verifier. (Its length is not what is tested: 20 s leaves a loaded
	// machine time to attest inside it; 8 s could run out before the
	// first attestation, which the check below reports as proving
	// nothing.)
	const window = 20 * time.Second
	windowed := filepath.Join(dir, "rollout.json")
	opened := time.Now()
	runBinary(t, 0, ibin, "policy", "window", v1, v2, "--for", window.String(), "--note", "tool 2.0", "--out", windowed)
	cli(0, "policy", "add", "fleet", windowed)

	// Inside the window: the upgraded tool runs.
	install(tool, "tool 2.0")
	measure(tool)
	waitFor(t, window/2, "the upgraded tool attested", func() bool { return show().LogOffset == 5 })
	if v := show(); v.State != "trusted" {
		t.Fatalf("upgrade inside the window: %s %v", v.State, v.Reasons)
	}
	if time.Since(opened) >= window {
		t.Fatalf("attested only %v after the window opened (window %v): the test proves nothing", time.Since(opened), window)
	}

	// After the window: the upgraded library runs, and fails.
	time.Sleep(time.Until(opened.Add(window + time.Second))) // time under test: the window closes
	install(lib, "libtool 2.0")
	measure(lib)
	waitFor(t, 10*time.Second, "failed", func() bool { return show().State == "failed" })
	v := show()
	if r := strings.Join(v.Reasons, "; "); !strings.Contains(r, lib) || !strings.Contains(r, "digest-mismatch") || strings.Contains(r, tool+":") {
		t.Errorf("after the window: reasons %q, want %s digest-mismatch only", r, lib)
	}
	t.Log(fmt.Sprint("after the window: ", v.Reasons))
}
