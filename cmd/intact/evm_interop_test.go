// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/testenv"
)

const interopUUID = "8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6"

// TestEvmctlEVMSignaturesVerifyWithIntact: evmctl sign --portable --imasig
// and evmctl sign --imasig --uuid=U make security.evm values that intact
// verify accepts, and rejects once the metadata changes.
func TestEvmctlEVMSignaturesVerifyWithIntact(t *testing.T) {
	dir := xattrDir(t)
	for _, k := range interopKeys {
		key, cert := opensslKey(t, dir, "ossl-evm-"+k.name, k.opensslNewkey, k.opensslExtra...)
		port := writeFile(t, filepath.Join(dir, "evmctl-portable-"+k.name), "portable by evmctl "+k.name+"\n")
		if out, ok := evmctl(t, "sign", "--portable", "--imasig", "--key", key, port); !ok {
			t.Fatalf("evmctl sign --portable %s: %s", k.name, out)
		}
		full := writeFile(t, filepath.Join(dir, "evmctl-full-"+k.name), "full by evmctl "+k.name+"\n")
		if out, ok := evmctl(t, "sign", "--imasig", "--uuid="+interopUUID, "--key", key, full); !ok {
			t.Fatalf("evmctl sign --uuid %s: %s", k.name, out)
		}
		if b := getEVM(t, port); b[0] != 0x05 {
			t.Fatalf("evmctl portable security.evm %x", b)
		}
		if b := getEVM(t, full); b[0] != 0x03 {
			t.Fatalf("evmctl full security.evm %x", b)
		}
		v := verdicts(t, 0, "--cert", cert, "--require-evm", "--uuid", interopUUID, port, full)
		if v[port] != "ok" || v[full] != "ok" {
			t.Errorf("%s: evmctl's EVM signatures verify as %v with intact", k.name, v)
		}
		// Another UUID: the full signature no longer matches, the portable
		// one does not cover the UUID.
		v = verdicts(t, 1, "--cert", cert, "--uuid", "00000000-0000-0000-0000-000000000001", port, full)
		if v[port] != "ok" || v[full] != "metadata-changed" {
			t.Errorf("%s: with another uuid: %v", k.name, v)
		}
		for _, p := range []string{port, full} {
			if err := os.Chown(p, 1234, 1234); err != nil {
				t.Fatal(err)
			}
		}
		v = verdicts(t, 1, "--cert", cert, "--uuid", interopUUID, port, full)
		if v[port] != "metadata-changed" || v[full] != "metadata-changed" {
			t.Errorf("%s: after chown: %v", k.name, v)
		}
	}
}

// TestIntactEVMSignaturesVerifyWithEvmctl: intact sign --evm portable and
// --evm full --uuid U pass evmctl verify, which refuses them after a change.
func TestIntactEVMSignaturesVerifyWithEvmctl(t *testing.T) {
	dir := xattrDir(t)
	for _, k := range interopKeys {
		key, cert := filepath.Join(dir, "intact-evm-"+k.name+".pem"), filepath.Join(dir, "intact-evm-"+k.name+".der")
		mustRun(t, 0, "keygen", "--type", k.intactType, "--key", key, "--cert", cert)
		port := writeFile(t, filepath.Join(dir, "intact-portable-"+k.name), "portable by intact "+k.name+"\n")
		full := writeFile(t, filepath.Join(dir, "intact-full-"+k.name), "full by intact "+k.name+"\n")
		mustRun(t, 0, "sign", "--key", key, "--evm", "portable", port)
		mustRun(t, 0, "sign", "--key", key, "--evm", "full", "--uuid", interopUUID, full)
		if out, ok := evmctl(t, "verify", "--key", cert, port); !ok {
			t.Errorf("%s: evmctl verify refused intact's portable signature: %s", k.name, out)
		}
		if out, ok := evmctl(t, "verify", "--uuid="+interopUUID, "--key", cert, full); !ok {
			t.Errorf("%s: evmctl verify --uuid refused intact's full signature: %s", k.name, out)
		}
		if out, ok := evmctl(t, "verify", "--uuid=00000000-0000-0000-0000-000000000001", "--key", cert, full); ok {
			t.Errorf("%s: evmctl verify accepts the full signature with another uuid: %s", k.name, out)
		}
		for _, p := range []string{port, full} {
			if err := os.Chmod(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if out, ok := evmctl(t, "verify", "--key", cert, port); ok {
			t.Errorf("%s: evmctl verify accepts the portable signature after chmod: %s", k.name, out)
		}
		if out, ok := evmctl(t, "verify", "--uuid="+interopUUID, "--key", cert, full); ok {
			t.Errorf("%s: evmctl verify accepts the full signature after chmod: %s", k.name, out)
		}
	}
}

// TestEvmctlHMACMatches: Debian's evmctl 1.4 hmac -a sha1 reads the key
// from /etc/keys/evm-key-plain and leaves out the UUID; with the same key,
// intact hmac --uuid none writes the same security.evm on the same files —
// evmctl reading ino, generation and the xattrs itself. evmctl runs in a
// private mount namespace with a tmpfs over /etc, so the host's /etc/keys
// is never touched.
func TestEvmctlHMACMatches(t *testing.T) {
	dir := xattrDir(t)
	testenv.RequireTool(t, "unshare")
	testenv.RequireTool(t, "evmctl")
	keyFile := makeEVMKey(t, dir, "k")
	b, _ := os.ReadFile(keyFile)
	kf, err := evm.ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	key, err := kf.Open([]byte("pw-k"))
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "evm-key-plain")
	os.WriteFile(plain, key, 0o600)

	files := map[string]map[string]string{
		"ima-only":  nil,
		"selinux":   {evm.XattrSELinux: "system_u:object_r:bin_t:s0\x00"},
		"cap+label": {evm.XattrCapability: "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", evm.XattrAppArmor: "unconfined"},
	}
	for name, xs := range files {
		f := writeFile(t, filepath.Join(dir, "hmac-"+name), "hmac interop "+name+"\n")
		mustRun(t, 0, "hash", f)
		for n, v := range xs {
			setX(t, f, n, v)
		}
		// The 64-bit h_misc, and the 32-bit one (evmctl --m32, intact --m32).
		for _, m32 := range []string{"--m32", "--m64"} { // the 64-bit one last: verify below
			script := `set -e; mount -t tmpfs none /etc; mkdir /etc/keys; cp "$1" /etc/keys/evm-key-plain; evmctl hmac -a sha1 "$3" "$2"`
			if out, err := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", plain, f, m32).CombinedOutput(); err != nil {
				t.Fatalf("evmctl hmac %s %s: %v\n%s", m32, name, err, out)
			}
			theirs := getEVM(t, f)
			args := []string{"hmac", "-n", "--uuid", "none", "--evmkey", keyFile, "--passphrase-env", testPassEnv, f}
			if m32 == "--m32" {
				args = append(args, "--m32")
			}
			if got := strings.Fields(mustRun(t, 0, args...))[0]; got != hex.EncodeToString(theirs) {
				t.Errorf("%s %s: intact %s, evmctl %x", name, m32, got, theirs)
			}
		}
		if v := verdicts(t, 0, "--evmkey", keyFile, "--passphrase-env", testPassEnv, "--uuid", "none", "--require-evm", f); v[f] != "ok" {
			t.Errorf("%s: evmctl's hmac verifies as %q", name, v[f])
		}
	}
}
