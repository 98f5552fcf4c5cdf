// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func TestEventlogReplayCLI(t *testing.T) {
	var exp map[string]map[string]map[string]string
	b, _ := os.ReadFile(testenv.Testdata(t, "tcg-eventlogs/expected-pcrs.json"))
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	const name = "ubuntu-2104-no-secure-boot.bin"
	log := testenv.Testdata(t, "tcg-eventlogs/"+name)
	// Without PCR values: the values the log replays to.
	out := mustRun(t, 0, "eventlog", "replay", log)
	for bank, pcrs := range exp[name] {
		for i, v := range pcrs {
			if !strings.Contains(out, fmt.Sprintf("%s pcr %s: %s\n", bank, i, v)) {
				t.Errorf("eventlog replay does not print %s pcr %s = %s", bank, i, v)
			}
		}
	}
	if !strings.Contains(out, "unverified") {
		t.Error("components without pcr values are not marked unverified")
	}
	// With PCR values (tpm2_pcrread format): verified components.
	var text strings.Builder
	for bank, pcrs := range exp[name] {
		fmt.Fprintf(&text, "%s:\n", bank)
		var idx []string
		for i := range pcrs {
			idx = append(idx, i)
		}
		sort.Strings(idx)
		for _, i := range idx {
			fmt.Fprintf(&text, "  %s : 0x%s\n", i, pcrs[i])
		}
	}
	pcrFile := filepath.Join(t.TempDir(), "pcrs")
	os.WriteFile(pcrFile, []byte(text.String()), 0o644)
	out = mustRun(t, 0, "eventlog", "replay", "--json", "--pcrs", pcrFile, log)
	var j struct {
		Verified   bool
		Components []struct{ Type, Description string }
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if !j.Verified || len(j.Components) == 0 {
		t.Fatalf("eventlog replay --pcrs: verified %v, %d components", j.Verified, len(j.Components))
	}
	found := false
	for _, c := range j.Components {
		if c.Type == "EV_IPL" && strings.Contains(c.Description, "kernel_cmdline") {
			found = true
		}
	}
	if !found {
		t.Error("no kernel command line among the components")
	}
	// A wrong PCR 4: exit 1.
	bad := strings.Replace(text.String(), exp[name]["sha256"]["4"], strings.Repeat("ab", 32), 1)
	os.WriteFile(pcrFile, []byte(bad), 0o644)
	if _, stderr, code := runCLI(t, "eventlog", "replay", "--pcrs", pcrFile, log); code != 1 || !strings.Contains(stderr, "[4]") {
		t.Errorf("eventlog replay with a wrong pcr 4: exit %d, %q", code, stderr)
	}
}
