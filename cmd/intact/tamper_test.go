// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestTamperVerdicts: every tamper is caught with its own verdict, and the
// untouched files stay ok, for RSA and ECDSA keys.
func TestTamperVerdicts(t *testing.T) {
	for _, keyType := range []string{"rsa2048", "ec-p256"} {
		t.Run(keyType, func(t *testing.T) { tamperVerdicts(t, keyType) })
	}
}

func tamperVerdicts(t *testing.T, keyType string) {
	dir := xattrDir(t)
	tree := filepath.Join(dir, "tree")
	os.Mkdir(tree, 0o755)
	key, cert := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.der")
	mustRun(t, 0, "keygen", "--type", keyType, "--key", key, "--cert", cert)
	otherKey, otherCert := filepath.Join(dir, "o.pem"), filepath.Join(dir, "o.der")
	mustRun(t, 0, "keygen", "--type", keyType, "--key", otherKey, "--cert", otherCert)

	names := []string{"untouched-1", "untouched-2", "byte-changed", "truncated", "appended",
		"label-copied", "sig-flipped", "sig-der-broken", "unknown-algo", "label-truncated", "label-removed",
		"untouched-3"}
	for i, n := range names {
		writeFile(t, filepath.Join(tree, n), n+" content "+string(rune('a'+i))+" with some length to it\n")
	}
	mustRun(t, 0, "sign", "--key", key, "-r", tree)
	if v := verdicts(t, 0, "--cert", cert, "-r", tree); len(v) != len(names) {
		t.Fatalf("before tampering: %v", v)
	}
	p := func(n string) string { return filepath.Join(tree, n) }
	mutate := func(n string, fn func([]byte) []byte) {
		b, err := os.ReadFile(p(n))
		if err != nil {
			t.Fatal(err)
		}
		// rewrite in place: the inode and its label stay
		f, err := os.OpenFile(p(n), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(fn(b))
		f.Close()
	}
	mutate("byte-changed", func(b []byte) []byte { b[3] ^= 1; return b })
	mutate("truncated", func(b []byte) []byte { return b[:len(b)-1] })
	mutate("appended", func(b []byte) []byte { return append(b, 0) })
	setLabel(t, p("label-copied"), getLabel(t, p("untouched-1")))

	lbl := getLabel(t, p("sig-flipped"))
	if keyType == "rsa2048" {
		lbl[len(lbl)-20] ^= 0x40 // anywhere in an RSA signature
	} else {
		lbl[len(lbl)-1] ^= 0x40 // the low byte of ECDSA's s
	}
	setLabel(t, p("sig-flipped"), lbl)
	lbl = getLabel(t, p("sig-der-broken"))
	lbl[9] = 0x31 // SET instead of SEQUENCE / first byte of the RSA block
	setLabel(t, p("sig-der-broken"), lbl)
	lbl = getLabel(t, p("unknown-algo"))
	lbl[2] = 0x42
	setLabel(t, p("unknown-algo"), lbl)
	lbl = getLabel(t, p("label-truncated"))
	setLabel(t, p("label-truncated"), lbl[:len(lbl)-5])
	if err := removeLabel(p("label-removed")); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"untouched-1": "ok", "untouched-2": "ok", "untouched-3": "ok",
		"byte-changed": "content-changed", "truncated": "content-changed", "appended": "content-changed",
		"label-copied": "content-changed",
		"sig-flipped":  "bad-signature", "sig-der-broken": "bad-signature",
		"unknown-algo": "unsupported", "label-truncated": "bad-label", "label-removed": "no-label",
	}
	if keyType != "rsa2048" {
		// ECDSA cannot tell over what digest a well-formed signature was
		// made: a changed s reads as a change of content (docs/cli.md).
		want["sig-flipped"] = "content-changed"
	}
	got := verdicts(t, 1, "--cert", cert, "-r", tree)
	for n, w := range want {
		if got[p(n)] != w {
			t.Errorf("%s: verdict %q, want %q", n, got[p(n)], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("verify reported %d files, want %d", len(got), len(want))
	}
	// The wrong certificate: every signed file names an unknown key.
	got = verdicts(t, 1, "--cert", otherCert, p("untouched-1"), p("byte-changed"))
	for _, n := range []string{"untouched-1", "byte-changed"} {
		if got[p(n)] != "unknown-key" {
			t.Errorf("wrong certificate, %s: %q, want unknown-key", n, got[p(n)])
		}
	}
	// Human output names each failing file once and summarises.
	out, _, code := runCLI(t, "verify", "--cert", cert, "-r", tree)
	if code != 1 || !bytes.Contains([]byte(out), []byte(p("byte-changed")+": content-changed")) ||
		bytes.Contains([]byte(out), []byte(p("untouched-1"))) ||
		!bytes.Contains([]byte(out), []byte("12 file(s) verified, 3 ok, 9 failed")) {
		t.Errorf("human output (exit %d):\n%s", code, out)
	}
}

func removeLabel(path string) error {
	return xattrRemove(path, "security.ima")
}
