// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func manifestFixture(t *testing.T) (dir, key, cert, m string) {
	t.Helper()
	work := t.TempDir()
	key, cert = filepath.Join(work, "k.pem"), filepath.Join(work, "k.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", key, "--cert", cert)
	dir = filepath.Join(work, "tree")
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	writeFile(t, filepath.Join(dir, "bin", "tool"), "tool")
	writeFile(t, filepath.Join(dir, "conf"), "conf")
	m = filepath.Join(work, "tree.manifest")
	mustRun(t, 0, "manifest", "create", "--key", key, "-o", m, dir)
	return dir, key, cert, m
}

func TestManifestExitStatus(t *testing.T) {
	dir, key, cert, m := manifestFixture(t)
	out := mustRun(t, 0, "manifest", "check", "--cert", cert, m)
	if !strings.Contains(out, "Summary: unchanged") {
		t.Fatalf("unchanged check printed:\n%s", out)
	}
	os.Remove(filepath.Join(dir, "conf"))
	out = mustRun(t, 1, "manifest", "check", "--cert", cert, m)
	if !strings.Contains(out, "removed: "+dir+"/conf (file)") {
		t.Fatalf("removed file not reported:\n%s", out)
	}
	// usage and operational errors: 2
	mustRun(t, 2, "manifest", "check", m)                                          // no --cert
	mustRun(t, 2, "manifest", "check", "--cert", cert, filepath.Join(dir, "nope")) // no manifest
	mustRun(t, 2, "manifest", "create", "--key", key, "-o", filepath.Join(dir, "in-tree"), dir)
	_, errs, code := runCLI(t, "manifest", "check", "--cert", cert, m, "/nonexistent-dir")
	if code != 2 || !strings.Contains(errs, "/nonexistent-dir") {
		t.Fatalf("missing DIR: exit %d, stderr %s", code, errs)
	}
}

// A manifest changed by one byte fails its signature: exit 1 and nothing
// of it is reported.
func TestManifestForgedReportsNothing(t *testing.T) {
	dir, _, cert, m := manifestFixture(t)
	b, _ := os.ReadFile(m)
	forged := bytes.Replace(b, []byte("/conf f 0755"), []byte("/conf f 0644"), 1)
	if bytes.Equal(forged, b) {
		t.Fatalf("fixture changed: %s", b)
	}
	os.WriteFile(m, forged, 0o644)
	os.Chmod(filepath.Join(dir, "conf"), 0o644) // matches the forged entry
	out, errs, code := runCLI(t, "manifest", "check", "--cert", cert, m)
	if code != 1 || out != "" || !strings.Contains(errs, "signature does not verify") {
		t.Fatalf("forged manifest: exit %d\nstdout: %q\nstderr: %s", code, out, errs)
	}
}

// Names that would forge report lines are escaped in text and exact in
// JSON.
func TestManifestNamesCannotForgeLines(t *testing.T) {
	dir, _, cert, m := manifestFixture(t)
	evil := "x\nSummary: unchanged\n\x1b[2J"
	writeFile(t, filepath.Join(dir, evil), "dropped")
	writeFile(t, filepath.Join(dir, "bad\xff\xfe"), "a")
	writeFile(t, filepath.Join(dir, "bad\xfe\xff"), "b")
	out := mustRun(t, 1, "manifest", "check", "--cert", cert, m)
	if strings.Contains(out, "\nSummary: unchanged") || strings.Contains(out, "\x1b") {
		t.Fatalf("a name forged a line:\n%q", out)
	}
	out = mustRun(t, 1, "manifest", "check", "--json", "--cert", cert, m)
	paths := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r struct{ Path, Status string }
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Status == "added" {
			paths[r.Path] = true
		}
	}
	for _, want := range []string{dir + "/bad%FF%FE", dir + "/bad%FE%FF", dir + "/x%0ASummary:%20unchanged%0A%1B[2J"} {
		if !paths[want] {
			t.Errorf("%q not reported exactly; got %v", want, paths)
		}
	}
}

func TestManifestUpdate(t *testing.T) {
	dir, key, cert, m := manifestFixture(t)
	writeFile(t, filepath.Join(dir, "bin", "new"), "approved")
	// without --yes and without a terminal: nothing written
	before, _ := os.ReadFile(m)
	mustRun(t, 2, "manifest", "update", "--key", key, "--cert", cert, m)
	if after, _ := os.ReadFile(m); !bytes.Equal(before, after) {
		t.Fatal("update without confirmation changed the manifest")
	}
	out := mustRun(t, 0, "manifest", "update", "--yes", "--key", key, "--cert", cert, m)
	if !strings.Contains(out, "added:   "+dir+"/bin/new") {
		t.Fatalf("update did not show the difference first:\n%s", out)
	}
	mustRun(t, 0, "manifest", "check", "--cert", cert, m)
}

// policy generate --manifest lists the files as the manifest recorded
// them, only once the manifest verifies.
func TestPolicyFromManifest(t *testing.T) {
	dir, _, cert, m := manifestFixture(t)
	out := filepath.Join(t.TempDir(), "p.json")
	writeFile(t, filepath.Join(dir, "conf"), "changed after the manifest") // the policy keeps the signed digest
	mustRun(t, 0, "policy", "generate", "--manifest", m, "--manifest-cert", cert, "--out", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Digests map[string][]string }
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	got := p.Digests[filepath.Join(dir, "conf")]
	if len(got) != 1 || got[0] != "sha256:"+sha256Hex("conf") {
		t.Fatalf("conf listed as %v, want the manifest's digest", got)
	}
	if len(p.Digests) != 2 {
		t.Fatalf("listed %v", p.Digests)
	}
	// without a certificate that verifies it: refused, nothing written
	out2 := filepath.Join(t.TempDir(), "p2.json")
	mustRun(t, 2, "policy", "generate", "--manifest", m, "--out", out2)
	if _, err := os.Stat(out2); err == nil {
		t.Fatal("a policy was written from an unverified manifest")
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
