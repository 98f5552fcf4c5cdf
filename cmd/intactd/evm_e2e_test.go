// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/fanotify/fantest"
	"github.com/intactsec/intact/internal/xattr"
)

// TestE2EEVMStrip: with an EVM key configured, a signed program made
// setuid after its HMAC and then stripped of security.evm (which would
// tell) is denied (no-label, missing-HMAC), as the kernel does once EVM is
// initialized. --evm-optional lets it run and says so at start.
func TestE2EEVMStrip(t *testing.T) {
	w := e2eWorld(t)
	if w == nil {
		return
	}
	const passEnv = "INTACT_E2E_EVM_PASSPHRASE"
	os.Setenv(passEnv, "e2e passphrase")
	pass := filepath.Join(w.dir, "evm.pass")
	os.WriteFile(pass, []byte("e2e passphrase\n"), 0o600)
	key := filepath.Join(w.dir, "evm.key")
	w.intact("evmkey", "create", "--out", key, "--passphrase-env", passEnv, "--kdf-time", "1", "--kdf-memory", "64", "--kdf-threads", "1")
	hmacd := func(name string) string {
		p := filepath.Join(w.mnt, name)
		fantest.Copy(t, "/bin/true", p, 0o755)
		w.intact("sign", "--key", w.key, p)
		w.intact("hmac", "--evmkey", key, "--passphrase-env", passEnv, p)
		return p
	}
	good := hmacd("good")
	stripped := hmacd("stripped")
	if err := os.Chmod(stripped, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := xattr.Remove(stripped, "security.evm"); err != nil {
		t.Fatal(err)
	}
	setuid := hmacd("setuid") // setuid, HMAC left: metadata-changed
	if err := os.Chmod(setuid, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	const pol = "appraise func=BPRM_CHECK\n"
	w.start(pol, "--evmkey", key, "--evmkey-passphrase-file", pass)
	w.wantRuns(good)
	w.wantDenied(setuid)
	w.wantDenied(stripped)
	w.awaitRecord("denied", setuid, "metadata-changed")
	w.awaitRecord("denied", stripped, "no-label")
	for _, r := range w.records("denied") {
		if r["path"] == stripped && !strings.Contains(r["reason"].(string), "missing-HMAC") {
			t.Errorf("record does not name the missing HMAC: %v", r)
		}
	}
	if strings.Contains(w.log.String(), "EVM OPTIONAL") {
		t.Error("warned about --evm-optional without it")
	}
	w.stop()

	// The migration opt-out: allowed, and loudly so.
	w.start(pol, "--evmkey", key, "--evmkey-passphrase-file", pass, "--evm-optional")
	if !strings.Contains(w.log.String(), "EVM OPTIONAL") {
		t.Errorf("no warning at start with --evm-optional:\n%s", w.log)
	}
	w.wantRuns(stripped)
	w.wantDenied(setuid)
	w.stop()
}
