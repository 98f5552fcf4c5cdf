// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/rtpolicy"
)

func readRT(t *testing.T, path string) rtpolicy.Policy {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rtpolicy.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c.Document()
}

// writeList writes an ASCII measurement list of files (path -> content).
func writeList(t *testing.T, path string, files [][2]string) {
	t.Helper()
	l := mlog.NewList(mlog.Options{Bank: digest.SHA1})
	for _, f := range files {
		d := sha256.Sum256([]byte(f[1]))
		r, err := mlog.NewRecord(10, mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: d[:], Path: f[0]}, digest.SHA1)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := l.MarshalASCII()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b))
}

func TestRuntimePolicyCLI(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "img")
	for _, d := range []string{"usr/bin", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tree, "usr/bin/tool"), "tool 1")
	writeFile(t, filepath.Join(tree, "usr/lib/lib.so"), "lib")
	p1 := filepath.Join(dir, "v1.json")
	mustRun(t, 0, "policy", "generate", "--tree", tree, "--strip", tree, "--out", p1)
	if d := readRT(t, p1); len(d.Digests) != 2 || d.Name != "v1" || d.Digests["/usr/bin/tool"] == nil {
		t.Fatalf("generated %+v", d)
	}
	// The upgrade: a new tool.
	writeFile(t, filepath.Join(tree, "usr/bin/tool"), "tool 2")
	p2 := filepath.Join(dir, "v2.json")
	mustRun(t, 0, "policy", "generate", "--tree", tree, "--strip", tree, "--out", p2)

	out, _, code := runCLI(t, "policy", "diff", p1, p2)
	if code != 1 || !strings.Contains(out, "~ /usr/bin/tool - ") || !strings.Contains(out, "~ /usr/bin/tool + ") {
		t.Errorf("diff: exit %d\n%s", code, out)
	}
	if out := mustRun(t, 0, "policy", "diff", p1, p1); out != "" {
		t.Errorf("diff with itself: %q", out)
	}
	out, _, _ = runCLI(t, "policy", "diff", "--json", p1, p2)
	var delta rtpolicy.Delta
	if err := json.Unmarshal([]byte(out), &delta); err != nil || len(delta.Changed) != 1 {
		t.Errorf("diff --json: %v %s", err, out)
	}

	merged := filepath.Join(dir, "merged.json")
	_, errs, code := runCLI(t, "policy", "merge", p1, p2, "--out", merged)
	if code != 0 || !strings.Contains(errs, "/usr/bin/tool: different-digests") {
		t.Errorf("merge: exit %d, stderr %s", code, errs)
	}
	if d := readRT(t, merged); len(d.Digests["/usr/bin/tool"]) != 2 {
		t.Errorf("merged %v", d.Digests)
	}

	// Update window: v1 plus v2's digests for an hour; a list with the new
	// tool passes now, fails two hours later, and fails against plain v1.
	win := filepath.Join(dir, "win.json")
	mustRun(t, 0, "policy", "window", p1, p2, "--for", "1h", "--note", "tool 2", "--out", win)
	list := filepath.Join(dir, "list")
	writeList(t, list, [][2]string{{"/usr/bin/tool", "tool 2"}, {"/usr/lib/lib.so", "lib"}})
	mustRun(t, 0, "policy", "eval", win, list)
	later := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	out = mustRun(t, 1, "policy", "eval", "--at", later, win, list)
	if !strings.Contains(out, "/usr/bin/tool: digest-mismatch") {
		t.Errorf("eval after the window:\n%s", out)
	}
	mustRun(t, 1, "policy", "eval", p1, list)

	// Signing.
	key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", key, "--cert", cert)
	signed := filepath.Join(dir, "signed.json")
	mustRun(t, 0, "policy", "sign", "--key", key, win, "--out", signed)
	plain := filepath.Join(dir, "plain.json")
	out = mustRun(t, 0, "policy", "verify-signature", "--cert", cert, signed, "--out", plain)
	if !strings.Contains(out, "signature ok") || len(readRT(t, plain).Windows) != 1 {
		t.Errorf("verify-signature: %s", out)
	}
	b, _ := os.ReadFile(signed)
	var env map[string]any
	json.Unmarshal(b, &env)
	env["excludes"] = []string{"^/"} // accept everything
	tampered, _ := json.Marshal(env)
	writeFile(t, signed, string(tampered))
	_, errs, code = runCLI(t, "policy", "verify-signature", "--cert", cert, signed)
	if code != 1 || !strings.Contains(errs, "signature does not verify") {
		t.Errorf("tampered: exit %d %s", code, errs)
	}
	_, errs, code = runCLI(t, "policy", "verify-signature", "--cert", cert, p1)
	if code != 1 || !strings.Contains(errs, "not signed") {
		t.Errorf("unsigned: exit %d %s", code, errs)
	}
	det := filepath.Join(dir, "det.json")
	mustRun(t, 0, "policy", "sign", "--detached", "--key", key, p1, "--out", det)
	mustRun(t, 0, "policy", "verify-signature", "--cert", cert, "--sig", det+".sig", det)
	mustRun(t, 1, "policy", "verify-signature", "--cert", cert, "--sig", det+".sig", p2)

	// From the measurement list.
	fromLog := filepath.Join(dir, "fromlog.json")
	mustRun(t, 0, "policy", "generate", "--log", list, "--out", fromLog)
	mustRun(t, 0, "policy", "eval", fromLog, list)

	// Usage errors.
	for _, args := range [][]string{
		{"policy", "generate"},
		{"policy", "generate", "--tree", tree, "--dpkg"},
		{"policy", "generate", "--tree", tree, "--trust-signed"},
		{"policy", "merge", p1},
		{"policy", "diff", p1},
		{"policy", "window", p1, p2, "--out", win},
		{"policy", "sign", p1},
		{"policy", "nosuch"},
	} {
		if _, _, code := runCLI(t, args...); code != 2 {
			t.Errorf("intact %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	// A Keylime policy given where an intact one is expected: a hint.
	_, errs, code = runCLI(t, "policy", "diff", testenv.Testdata(t, "keylime/policy-sha256"), p1)
	if code != 2 || !strings.Contains(errs, "import-keylime") {
		t.Errorf("keylime policy to diff: exit %d %s", code, errs)
	}
}

// The Keylime samples through the CLI: the imported allowlist judges the
// sample list as Keylime does ("/data" is not "data": not in the list).
func TestImportKeylimeCLI(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "al.json")
	_, errs, code := runCLI(t, "policy", "import-keylime", testenv.Testdata(t, "keylime/allowlist-sha256"), "--out", out)
	if code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	d := readRT(t, out)
	if got := d.Digests["data"]; len(got) != 2 || !d.SignatureFallback || !d.IgnoreViolations {
		t.Fatalf("imported %+v", d)
	}
	res := mustRun(t, 1, "policy", "eval", "--json", out, testenv.Testdata(t, "keylime/ima-log-sha256"))
	var fs []rtpolicy.Finding
	if err := json.Unmarshal([]byte(res), &fs); err != nil || len(fs) != 1 || fs[0].Path != "/data" || fs[0].Reason != rtpolicy.NotInPolicy {
		t.Errorf("eval: %v %s", err, res)
	}
	_, errs, code = runCLI(t, "policy", "import-keylime", filepath.Join(dir, "none"))
	if code != 2 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: %d %s", code, errs)
	}
	bad := writeFile(t, filepath.Join(dir, "bad.json"), `{"meta":{"version":1},"digests":{},"excludes":["(?<=x)y"]}`)
	_, errs, code = runCLI(t, "policy", "import-keylime", bad)
	if code != 2 || !strings.Contains(errs, "excludes[0]") {
		t.Errorf("bad exclude: %d %s", code, errs)
	}
}

func TestGenerateDpkgCLI(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/info/coreutils.list"); err != nil {
		t.Skip("no dpkg database with coreutils")
	}
	out := filepath.Join(t.TempDir(), "core.json")
	_, errs, code := runCLI(t, "policy", "generate", "--dpkg", "--package", "coreutils", "-j", "2", "--out", out)
	if code != 0 || !strings.Contains(errs, "paths listed") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if d := readRT(t, out); d.Digests["/usr/bin/cat"] == nil {
		t.Errorf("no /usr/bin/cat in %d paths", len(d.Digests))
	}
	if _, _, code := runCLI(t, "policy", "generate", "--dpkg", "--package", "no-such-package"); code != 2 {
		t.Errorf("unknown package: exit %d", code)
	}
}

// intact policy eval fails what the verifier and Keylime fail, whatever
// the policy lists: on Keylime's sample list (passing its own policy),
// a record whose template hash does not match its data, and an ima-sig
// record whose signature is malformed (its size field points past the
// data) although its digest is listed and the policy falls back to
// digests for signatures that do not verify.
func TestPolicyEvalTamperedRecords(t *testing.T) {
	dir := t.TempDir()
	sample := string(testenv.ReadTestdata(t, "keylime/ima-log-sha256"))
	const data = "96d7fae8adb7286a419a88f78c13d35fb782d63df654b7db56f154765698b754"
	kp := writeFile(t, filepath.Join(dir, "keylime.json"), `{"meta":{"version":1},"release":0,"digests":{"/data":["`+data+`"]},"excludes":[],"keyrings":{},"ima":{"ignored_keyrings":[],"log_hash_alg":"sha1","dm_policy":null},"ima-buf":{},"verification-keys":""}`)
	pol := filepath.Join(dir, "p.json")
	mustRun(t, 0, "policy", "import-keylime", kp, "--out", pol)
	if !readRT(t, pol).SignatureFallback {
		t.Fatal("the Keylime import does not fall back to digests")
	}
	mustRun(t, 0, "policy", "eval", pol, writeFile(t, filepath.Join(dir, "sample"), sample))

	// The /data record's template hash changed by one digit.
	lines := strings.SplitAfter(sample, "\n")
	f := strings.Fields(lines[1])
	if f[1][0] == 'f' {
		f[1] = "e" + f[1][1:]
	} else {
		f[1] = "f" + f[1][1:]
	}
	tampered := writeFile(t, filepath.Join(dir, "tampered"), lines[0]+strings.Join(f, " ")+"\n")
	res := mustRun(t, 1, "policy", "eval", "--json", pol, tampered)
	var fs []rtpolicy.Finding
	if err := json.Unmarshal([]byte(res), &fs); err != nil || len(fs) != 1 || fs[0].Index != 1 || fs[0].Path != "/data" || fs[0].Reason != rtpolicy.TemplateHash {
		t.Errorf("tampered template hash: %v %s", err, res)
	}

	// An ima-sig record of /data (listed digest, correct template hash)
	// whose signature header says 256 bytes and 4 follow.
	d, _ := hex.DecodeString(data)
	malformed := []byte{3, 2, 4, 0x12, 0x34, 0x56, 0x78, 0x01, 0x00, 1, 2, 3, 4}
	for name, s := range map[string][]byte{"size past the data": malformed, "short header": malformed[:6]} {
		r, err := mlog.NewRecord(10, mlog.TemplateIMASig, mlog.FileMeasurement{Algo: digest.SHA256, Digest: d, Path: "/data", Sig: s}, digest.SHA1)
		if err != nil {
			t.Fatal(err)
		}
		line, err := r.AppendASCII(nil)
		if err != nil {
			t.Fatal(err)
		}
		list := writeFile(t, filepath.Join(dir, "sig"), lines[0]+string(line))
		res := mustRun(t, 1, "policy", "eval", "--json", pol, list)
		if err := json.Unmarshal([]byte(res), &fs); err != nil || len(fs) != 1 || fs[0].Path != "/data" || fs[0].Reason != rtpolicy.Unparsable {
			t.Errorf("%s: %v %s", name, err, res)
		}
	}
}
