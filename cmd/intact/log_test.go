// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

// TestLogKeylimeLists: the log commands over Keylime's sample IMA lists,
// which every clone has (the Raspberry Pi list's tests are the shareddata
// run's): ASCII to binary and back byte for byte, show --json, and a
// replay checked against the value it printed.
func TestLogKeylimeLists(t *testing.T) {
	for _, algo := range []string{"sha1", "sha256", "sha512"} {
		ascii := testenv.Testdata(t, "keylime/ima-log-"+algo)
		want, _ := os.ReadFile(ascii)
		bin := filepath.Join(t.TempDir(), "binary_runtime_measurements")
		mustRun(t, 0, "log", "convert", "--to", "binary", "-o", bin, ascii)
		if out := mustRun(t, 0, "log", "convert", "--to", "ascii", bin); out != string(want) {
			t.Errorf("%s: ascii -> binary -> ascii differs:\n%s", algo, out)
		}
		out := mustRun(t, 0, "log", "show", "--json", bin)
		n := 0
		for dec := json.NewDecoder(strings.NewReader(out)); dec.More(); n++ {
			var r map[string]any
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
		}
		if n != 2 {
			t.Errorf("%s: log show --json printed %d records, want 2", algo, n)
		}
		out = mustRun(t, 0, "log", "replay", bin)
		line, _, _ := strings.Cut(out, "\n")
		v, ok := strings.CutPrefix(line, "sha1 pcr 10: ")
		if !ok || len(v) != 40 {
			t.Fatalf("%s: log replay printed %q", algo, out)
		}
		pcrs := filepath.Join(t.TempDir(), "pcrs")
		os.WriteFile(pcrs, []byte("PCR-10: "+v+"\n"), 0o644)
		if out := mustRun(t, 0, "log", "replay", "--pcrs", "sha1,"+pcrs, bin); !strings.Contains(out, "verified 2 of 2 records") {
			t.Errorf("%s: replay against its own value: %q", algo, out)
		}
		os.WriteFile(pcrs, []byte("PCR-10: "+strings.Repeat("07", 20)+"\n"), 0o644)
		if _, stderr, code := runCLI(t, "log", "replay", "--pcrs", "sha1,"+pcrs, bin); code != 1 || !bytes.Contains([]byte(stderr), []byte("no prefix")) {
			t.Errorf("%s: replay against another value: exit %d, %q", algo, code, stderr)
		}
	}
}
