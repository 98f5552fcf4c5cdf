// SPDX-License-Identifier: Apache-2.0

package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

var updateReplay = flag.Bool("update-replay", false, "rewrite testdata/replay.golden from the current output")

// TestReplayOutputPinned pins what "intact log replay" and "intact
// eventlog replay" print, byte for byte, with their exit status: text and
// JSON, without PCR values, with matching ones, with a wrong one, with a
// boot_aggregate that does not match, and with values for no PCR the
// input has. testdata/replay.golden was written by the code before the
// commands were cut into reading, judging and printing (go test
// -run TestReplayOutputPinned -update-replay rewrites it).
func TestReplayOutputPinned(t *testing.T) {
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var got strings.Builder
	run := func(args ...string) string {
		stdout, stderr, code := runCLI(t, args...)
		fmt.Fprintf(&got, "$ intact %s\nexit %d\n--- stdout\n%s--- stderr\n%s\n", strings.Join(args, " "), code, stdout, stderr)
		return stdout
	}

	// IMA lists: Keylime's sample (a boot_aggregate, then one file).
	list := testenv.Testdata(t, "keylime/ima-log-sha256")
	out := run("log", "replay", list)
	run("log", "replay", "--json", list)
	run("log", "replay", "--banks", "sha256,sha384", "--sha1-padded", list)
	line, _, _ := strings.Cut(out, "\n")
	pcr10, ok := strings.CutPrefix(line, "sha1 pcr 10: ")
	if !ok {
		t.Fatalf("log replay printed %q", out)
	}
	good := file("good", "PCR-10: "+pcr10+"\n")
	run("log", "replay", "--pcrs", "sha1,"+good, list)
	run("log", "replay", "--json", "--pcrs", good, list)
	wrong := file("wrong", "PCR-10: "+strings.Repeat("07", 20)+"\n")
	run("log", "replay", "--pcrs", wrong, list)
	run("log", "replay", "--json", "--pcrs", wrong, list)
	// The boot PCRs in the list's bank: its boot_aggregate is checked.
	var boot strings.Builder
	for i := range 10 {
		fmt.Fprintf(&boot, "PCR-%02d: %s\n", i, strings.Repeat("00", 32))
	}
	bootFile := file("boot", boot.String())
	run("log", "replay", "--pcrs", "sha256,"+bootFile, "--pcrs", "sha1,"+good, list)
	run("log", "replay", "--json", "--pcrs", "sha256,"+bootFile, "--pcrs", "sha1,"+good, list)
	boot.Reset()
	for i := range 10 {
		fmt.Fprintf(&boot, "PCR-%02d: %s\n", i, strings.Repeat("01", 32))
	}
	badBoot := file("badboot", boot.String())
	run("log", "replay", "--pcrs", "sha256,"+badBoot, "--pcrs", "sha1,"+good, list)
	run("log", "replay", "--json", "--pcrs", "sha256,"+badBoot, "--pcrs", "sha1,"+good, list)
	other := file("other", "PCR-11: "+pcr10+"\n")
	run("log", "replay", "--pcrs", other, list)

	// Boot event logs.
	elog := testenv.Testdata(t, "tcg-eventlogs/ubuntu-2104-no-secure-boot.bin")
	out = run("eventlog", "replay", "--json", elog)
	run("eventlog", "replay", elog)
	// Its replayed values as tpm2_pcrread prints them.
	var vals strings.Builder
	for _, bank := range []string{"sha1", "sha256"} {
		fmt.Fprintf(&vals, "%s:\n", bank)
		for i := range 10 {
			key := fmt.Sprintf(`"%s":{`, bank)
			_, rest, ok := strings.Cut(out, key)
			if !ok {
				t.Fatalf("no %s bank in %s", bank, out)
			}
			rest, _, _ = strings.Cut(rest, "}")
			_, v, ok := strings.Cut(rest, fmt.Sprintf(`"%d":"`, i))
			if !ok {
				continue
			}
			v, _, _ = strings.Cut(v, `"`)
			fmt.Fprintf(&vals, "  %d : 0x%s\n", i, v)
		}
	}
	egood := file("egood", vals.String())
	run("eventlog", "replay", "--pcrs", egood, elog)
	run("eventlog", "replay", "--json", "--pcrs", egood, elog)
	lines := strings.Split(vals.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  4 : 0x") && len(l) == 8+64 { // the sha256 bank's
			lines[i] = "  4 : 0x" + strings.Repeat("ab", 32)
		}
	}
	ewrong := file("ewrong", strings.Join(lines, "\n"))
	run("eventlog", "replay", "--pcrs", ewrong, elog)
	run("eventlog", "replay", "--json", "--pcrs", ewrong, elog)
	eother := file("eother", "sha256:\n  15 : 0x"+strings.Repeat("ab", 32)+"\n")
	run("eventlog", "replay", "--pcrs", eother, elog)

	text := strings.ReplaceAll(got.String(), dir, "$TMP")
	text = strings.ReplaceAll(text, list, "$LIST")
	text = strings.ReplaceAll(text, elog, "$EVENTLOG")
	golden := filepath.Join("testdata", "replay.golden")
	if *updateReplay {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		t.Errorf("replay output differs from %s:\n%s", golden, text)
	}
}
