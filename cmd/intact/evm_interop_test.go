package main

import (
	"os"
	"path/filepath"
	"testing"
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
