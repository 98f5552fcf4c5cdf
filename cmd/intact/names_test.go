// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/quote"
)

// forgedNames are file names that try to forge output lines or reach the
// terminal.
var forgedNames = []string{
	"x\n3 file(s) verified, all ok\nhidden",
	"y\r3 file(s) verified, all ok",
	"\x1b[2K\x1b[1Gz",
	"rlo\u202etxt.exe",
	"sp ace: ok",
}

// TestNamesCannotForgeOutput: file names holding newlines, carriage
// returns and escape sequences do not make verify -r or hash -n print a
// line they did not mean, nor pass a control byte to the terminal; each
// name is shown quoted, and unquotes to the exact name. On the old output
// verify -r printed a line "3 file(s) verified, all ok" of the name's.
func TestNamesCannotForgeOutput(t *testing.T) {
	dir := t.TempDir()
	for _, n := range forgedNames {
		writeFile(t, filepath.Join(dir, n), "content of "+n)
	}
	writeFile(t, filepath.Join(dir, "plain"), "plain")
	names := append([]string{"plain"}, forgedNames...)

	// verify -r: none has a label; one line per file, then the summary.
	out, _, code := runCLI(t, "verify", "-r", "--xattr-user", dir)
	if code != 1 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(names)+1 {
		t.Fatalf("verify printed %d lines for %d files:\n%s", len(lines), len(names), out)
	}
	checkPrintable(t, "verify", out)
	if want := "6 file(s) verified, 0 ok, 6 failed: 6 no-label"; lines[len(lines)-1] != want {
		t.Fatalf("summary %q, want %q", lines[len(lines)-1], want)
	}
	seen := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		q, rest, ok := strings.Cut(l, ": no-label")
		if !ok || strings.Contains(rest, "verified") {
			t.Fatalf("verify line %q", l)
		}
		p, err := quote.Unquote(q)
		if err != nil {
			t.Fatalf("verify line %q: %v", l, err)
		}
		seen[p] = true
	}
	for _, n := range names {
		if !seen[filepath.Join(dir, n)] {
			t.Errorf("verify did not name %q exactly; saw %v", n, seen)
		}
	}

	// hash -n: one "HEX NAME" line per file.
	out = mustRun(t, 0, "hash", "-n", "-r", "--xattr-user", dir)
	checkPrintable(t, "hash -n", out)
	re := regexp.MustCompile(`^04[0-9a-f]{66} (.+)$`)
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(names) {
		t.Fatalf("hash -n printed %d lines for %d files:\n%s", len(lines), len(names), out)
	}
	for i, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("hash -n line %q", l)
		}
		p, err := quote.Unquote(m[1])
		if err != nil || !strings.HasPrefix(p, dir+"/") {
			t.Fatalf("hash -n line %d %q: %q, %v", i, l, p, err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("hash -n named %q: %v", p, err)
		}
	}
}

func checkPrintable(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range []byte(out) {
		if c < 0x20 && c != '\n' || c == 0x7f {
			t.Fatalf("%s printed the control byte 0x%02x:\n%q", what, c, out)
		}
	}
	if strings.Contains(out, "\u202e") {
		t.Fatalf("%s printed U+202E", what)
	}
}

// TestJSONKeepsInvalidUTF8Names: two names that differ only in bytes
// that are not UTF-8, one intact and one changed, come out of verify
// --json distinguishable and exact (path_base64); encoding/json alone
// turned both into "bad\ufffd\ufffdname". policy generate does not list
// such a name (a JSON policy cannot hold it), and says so.
func TestJSONKeepsInvalidUTF8Names(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "bad\xff\xfename")
	b := filepath.Join(dir, "bad\xfe\xffname")
	writeFile(t, a, "a")
	writeFile(t, b, "b")
	writeFile(t, filepath.Join(dir, "good"), "good")
	mustRun(t, 0, "hash", "-r", "--xattr-user", dir)
	writeFile(t, b, "b changed")

	out, _, code := runCLI(t, "verify", "-r", "--json", "--xattr-user", dir)
	if code != 1 {
		t.Fatalf("verify --json: exit %d\n%s", code, out)
	}
	got := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r struct {
			Path       string `json:"path"`
			PathBase64 string `json:"path_base64"`
			Verdict    string `json:"verdict"`
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		p := r.Path
		if r.PathBase64 != "" {
			raw, err := base64.StdEncoding.DecodeString(r.PathBase64)
			if err != nil {
				t.Fatal(err)
			}
			p = string(raw)
		}
		got[p] = r.Verdict
	}
	want := map[string]string{a: "ok", b: "content-changed", filepath.Join(dir, "good"): "ok"}
	if len(got) != len(want) {
		t.Fatalf("verify --json gave %q, want %q", got, want)
	}
	for p, v := range want {
		if got[p] != v {
			t.Errorf("%q: %q, want %q (all: %q)", p, got[p], v, got)
		}
	}
	if strings.Contains(out, `"path_base64":"`+base64.StdEncoding.EncodeToString([]byte(filepath.Join(dir, "good")))) {
		t.Error("path_base64 given for a UTF-8 path")
	}

	pol := filepath.Join(t.TempDir(), "p.json")
	_, stderr, code := runCLI(t, "policy", "generate", "--tree", dir, "--out", pol)
	if code != 0 {
		t.Fatalf("policy generate: exit %d\n%s", code, stderr)
	}
	body, _ := os.ReadFile(pol)
	if strings.Contains(string(body), "bad") || !strings.Contains(string(body), filepath.Join(dir, "good")) {
		t.Errorf("policy:\n%s", body)
	}
	for _, p := range []string{a, b} {
		if !strings.Contains(stderr, quote.Name(p)+": path is not valid UTF-8") {
			t.Errorf("policy generate did not report %s:\n%s", quote.Name(p), stderr)
		}
	}
}
