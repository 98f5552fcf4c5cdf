// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandLineSymlinks: hash, sign and verify follow one rule (as
// find -H): a symlink named on the command line is resolved and its target
// worked on (and named); below a directory walked with -r symlinks are
// never followed. On the old code verify refused the symlink that hash and
// sign followed (exit 1, unreadable: too many levels of symbolic links).
func TestCommandLineSymlinks(t *testing.T) {
	dir := xattrDir(t)
	key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", key, "--cert", cert)
	tree := filepath.Join(dir, "tree")
	os.Mkdir(tree, 0o755)
	target := writeFile(t, filepath.Join(tree, "target"), "the file")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	// hash: the target is labelled and named.
	out := mustRun(t, 0, "hash", "-n", link)
	if !strings.HasSuffix(strings.TrimSpace(out), " "+target) {
		t.Errorf("hash -n of a command-line symlink: %q, want the target named", out)
	}
	mustRun(t, 0, "hash", link)
	if len(getLabel(t, target)) == 0 {
		t.Fatal("hash of a symlink did not label its target")
	}
	// sign: likewise.
	setLabel(t, target, []byte{})
	mustRun(t, 0, "sign", "--key", key, link)
	if l := getLabel(t, target); len(l) == 0 || l[0] != 3 {
		t.Fatalf("sign of a symlink did not sign its target: %x", l)
	}
	// verify: the same file, intact.
	v := verdicts(t, 0, "--cert", cert, link)
	if v[target] != "ok" || len(v) != 1 {
		t.Errorf("verify of a command-line symlink: %v, want %s ok", v, target)
	}
	// A symlink to a directory, with -r: walked, as its target.
	dlink := filepath.Join(dir, "dlink")
	os.Symlink(tree, dlink)
	if v := verdicts(t, 0, "--cert", cert, "-r", dlink); v[target] != "ok" || len(v) != 1 {
		t.Errorf("verify -r of a symlinked directory: %v", v)
	}
	// Below a walked directory a symlink is not followed: not a file.
	os.Symlink(target, filepath.Join(tree, "inner-link"))
	v = verdicts(t, 0, "--cert", cert, "-r", tree)
	if len(v) != 1 || v[target] != "ok" {
		t.Errorf("verify -r with a symlink inside: %v, want only %s", v, target)
	}
	// A dangling symlink is an operational error naming it.
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "nowhere"), dangling)
	for _, cmd := range [][]string{{"hash"}, {"sign", "--key", key}, {"verify", "--cert", cert}} {
		_, stderr, code := runCLI(t, append(cmd, dangling)...)
		if code != 2 || !strings.Contains(stderr, dangling) {
			t.Errorf("%s of a dangling symlink: exit %d, %q", cmd[0], code, stderr)
		}
	}
}

// TestPolicyGenerateRelativeTree: a relative --tree lists absolute paths
// (the tree as the machine sees it from here), never paths relative to
// nothing. On the old code ./bin/cat was listed as /bin/cat.
func TestPolicyGenerateRelativeTree(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	writeFile(t, filepath.Join(dir, "bin", "cat"), "cat")
	t.Chdir(dir)
	abs, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tree := range []string{"bin", "./bin", "bin/", "../" + filepath.Base(dir) + "/bin"} {
		out := filepath.Join(t.TempDir(), "p.json")
		mustRun(t, 0, "policy", "generate", "--tree", tree, "--out", out)
		b, _ := os.ReadFile(out)
		var p struct{ Digests map[string][]string }
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(abs, "bin", "cat")
		if len(p.Digests) != 1 || p.Digests[want] == nil {
			t.Errorf("--tree %s: %v, want %s", tree, p.Digests, want)
		}
	}
	// --strip still makes a mounted image's paths the machine's own.
	out := filepath.Join(t.TempDir(), "p.json")
	mustRun(t, 0, "policy", "generate", "--tree", "bin", "--strip", ".", "--out", out)
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `"/bin/cat"`) {
		t.Errorf("--tree bin --strip .: %s, want /bin/cat", b)
	}
}
