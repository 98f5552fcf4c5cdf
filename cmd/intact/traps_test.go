// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/sig"
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

// bundledKey writes a PEM key file that also holds a certificate for the
// key (certFirst: the certificate before the key) whose SubjectKeyIdentifier
// is ski, and returns its path.
func bundledKey(t *testing.T, dir, name string, key crypto.Signer, ski []byte, certFirst bool) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, SubjectKeyId: ski}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sig.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b := append(append([]byte{}, kp...), cp...)
	if certFirst {
		b = append(append([]byte{}, cp...), kp...)
	}
	return writeFile(t, filepath.Join(dir, name), string(b))
}

// TestKeyIDFromBundledCert: a signing key file that also holds its
// certificate signs with the keyid of that certificate's
// SubjectKeyIdentifier, as evmctl ima_sign does (the kernel finds the key
// by it): the same security.ima bytes as evmctl's, for an RSA key (whose
// signatures are deterministic). The old code used the key's own keyid.
func TestKeyIDFromBundledCert(t *testing.T) {
	dir := xattrDir(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ski := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0xde, 0xad, 0xbe, 0xef}
	f := writeFile(t, filepath.Join(dir, "f"), "signed content")
	for _, certFirst := range []bool{false, true} {
		key := bundledKey(t, dir, fmt.Sprintf("bundle-%v.pem", certFirst), rk, ski, certFirst)
		if out, ok := evmctl(t, "ima_sign", "-a", "sha256", "--key", key, f); !ok {
			t.Fatalf("evmctl ima_sign: %s", out)
		}
		want := getLabel(t, f)
		if !bytes.Equal(want[3:7], []byte{0xde, 0xad, 0xbe, 0xef}) {
			t.Fatalf("evmctl's label %x does not carry the certificate's keyid", want)
		}
		setLabel(t, f, []byte{1})
		mustRun(t, 0, "sign", "--key", key, f)
		if got := getLabel(t, f); !bytes.Equal(got, want) {
			t.Errorf("cert first %v: intact sign wrote\n%x\nevmctl ima_sign\n%x", certFirst, got, want)
		}
		// Verified by that certificate's keyid.
		cert := filepath.Join(dir, "cert.pem")
		b, _ := os.ReadFile(key)
		os.WriteFile(cert, b, 0o644)
		if v := verdicts(t, 0, "--cert", cert, f); v[f] != "ok" {
			t.Errorf("verify with the bundled certificate: %v", v)
		}
	}
	// A certificate without a SubjectKeyIdentifier: the key's own keyid
	// (evmctl 1.4 crashes on it).
	key := bundledKey(t, dir, "noski.pem", rk, nil, false)
	own, _ := sig.KeyID(rk.Public())
	mustRun(t, 0, "sign", "--key", key, f)
	if got := getLabel(t, f); binary.BigEndian.Uint32(got[3:7]) != own {
		t.Errorf("no SubjectKeyIdentifier: keyid %x, want the key's %08x", got[3:7], own)
	}
	// A certificate for another key: refused, naming the file.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCert := bundledKey(t, dir, "other.pem", other, ski, false)
	ob, _ := os.ReadFile(otherCert)
	kp, _ := sig.MarshalPrivateKey(rk)
	mixed := writeFile(t, filepath.Join(dir, "mixed.pem"), string(kp)+strings.SplitAfter(string(ob), "-----END PRIVATE KEY-----\n")[1])
	if _, stderr, code := runCLI(t, "sign", "--key", mixed, f); code != 2 || !strings.Contains(stderr, mixed) || !strings.Contains(stderr, "another key") {
		t.Errorf("a key file with another key's certificate: exit %d, %q", code, stderr)
	}
}
