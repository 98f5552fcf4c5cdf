// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/tpm"
)

// TestTPMPCRsMatchTpm2Tools: intact tpm pcrs --json shows what
// tpm2_pcrread shows, bank by bank.
func TestTPMPCRsMatchTpm2Tools(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{})
	sw.Tool(t, "tpm2_pcrextend", "3:sha1="+strings.Repeat("11", 20)+",sha256="+strings.Repeat("22", 32))
	var got struct {
		TPM   string
		Banks []struct {
			Bank string
			PCRs []struct {
				PCR   int
				Value string
			}
		}
	}
	out := mustRun(t, 0, "tpm", "pcrs", "--tpm", sw.Spec(), "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	text := strings.ToLower(sw.Tool(t, "tpm2_pcrread"))
	n := 0
	for _, b := range got.Banks {
		for _, p := range b.PCRs {
			// tpm2_pcrread prints "  3 : 0x…" under "  sha256:".
			sec := text[strings.Index(text, "  "+b.Bank+":"):]
			if !strings.Contains(sec, " : 0x"+p.Value+"\n") && !strings.Contains(sec, ": 0x"+p.Value+"\n") {
				t.Errorf("%s pcr %d = %s not in tpm2_pcrread's %s bank", b.Bank, p.PCR, p.Value, b.Bank)
			}
			n++
		}
	}
	if n < 24*2 {
		t.Fatalf("only %d pcr values: %s", n, out)
	}
	text2 := mustRun(t, 0, "tpm", "pcrs", "--tpm", sw.Spec(), "--bank", "sha256")
	if !strings.Contains(text2, "3 : 0x") || strings.Contains(text2, "sha1:") {
		t.Errorf("tpm pcrs --bank sha256:\n%s", text2)
	}
}

func TestTPMInfoCLI(t *testing.T) {
	out := mustRun(t, 0, "tpm", "info", "--tpm", "sim")
	for _, want := range []string{"manufacturer:     MSFT", "sha256", "ek present:       no"} {
		if !strings.Contains(out, want) {
			t.Errorf("tpm info lacks %q:\n%s", want, out)
		}
	}
}

func TestTPMUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tpm"}, "want \"intact tpm pcrs\""},
		{[]string{"tpm", "quote"}, "unknown tpm command"},
		{[]string{"tpm", "pcrs", "--tpm", "nonsense"}, "bad tpm spec"},
		{[]string{"tpm", "pcrs", "--tpm", "/dev/intact-no-tpm"}, "no tpm"},
		{[]string{"tpm", "pcrs", "--tpm", "sim", "--bank", "md5"}, "unknown pcr bank"},
		{[]string{"tpm", "info", "--tpm", "swtpm:127.0.0.1:1"}, "no tpm"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("intact %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestTPMKeygenSignEvmctl: keygen --tpm makes KEY.tpm and CERT.der; sign
// --key KEY.tpm --tpm signs in the TPM; evmctl ima_verify --key CERT.der
// accepts the labels (in security.ima and detached), and intact verify
// does too.
func TestTPMKeygenSignEvmctl(t *testing.T) {
	testenv.RequireTool(t, "evmctl")
	dir := xattrDir(t)
	sw := tpmtest.Start(t, tpmtest.Options{})
	for _, kt := range []string{"ec-p256", "rsa2048"} {
		key := filepath.Join(dir, kt+".tpm")
		cert := filepath.Join(dir, kt+".der")
		mustRun(t, 0, "keygen", "--tpm", sw.Spec(), "--type", kt, "--key", key, "--cert", cert)
		if b, _ := os.ReadFile(key); !strings.Contains(string(b), "-----BEGIN INTACT TPM KEY-----") {
			t.Fatalf("%s is not a TPM key file:\n%s", key, b)
		}
		if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", key, fi.Mode())
		}
		f := writeFile(t, filepath.Join(dir, "file-"+kt), "signed by a tpm key "+kt+"\n")
		for _, algo := range []string{"sha256", "sha384"} {
			mustRun(t, 0, "sign", "--key", key, "--tpm", sw.Spec(), "-a", algo, "--sigfile", f)
			if out, ok := evmctl(t, "ima_verify", "--key", cert, f); !ok {
				t.Errorf("%s/%s: evmctl ima_verify refused the tpm-signed label: %s", kt, algo, out)
			}
			if out, ok := evmctl(t, "ima_verify", "--sigfile", "--key", cert, f); !ok {
				t.Errorf("%s/%s: evmctl ima_verify --sigfile refused it: %s", kt, algo, out)
			}
			if v := verdicts(t, 0, "--cert", cert, f); v[f] != "ok" {
				t.Errorf("%s/%s: intact verify: %v", kt, algo, v)
			}
		}
		writeFile(t, f, "changed\n")
		if out, ok := evmctl(t, "ima_verify", "--key", cert, f); ok {
			t.Errorf("%s: evmctl accepted a changed file: %s", kt, out)
		}
	}
}

// TestTPMKeyBadInput: no TPM, a corrupted key blob, a key from another
// TPM, a type the TPM path does not make: exit 2, a clear message, and
// nothing written.
func TestTPMKeyBadInput(t *testing.T) {
	dir := t.TempDir()
	sw := tpmtest.Start(t, tpmtest.Options{})
	key := filepath.Join(dir, "k.tpm")
	mustRun(t, 0, "keygen", "--tpm", sw.Spec(), "--key", key, "--cert", filepath.Join(dir, "k.der"))

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no tpm", []string{"keygen", "--tpm", "/dev/intact-no-tpm", "--key", filepath.Join(dir, "n.tpm"), "--cert", filepath.Join(dir, "n.der")}, "no tpm"},
		{"bad type", []string{"keygen", "--tpm", "sim", "--type", "ec-p384", "--key", filepath.Join(dir, "t.tpm"), "--cert", filepath.Join(dir, "t.der")}, "unknown key type"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q", c.name, code, stderr)
		}
	}
	for _, p := range []string{"n.tpm", "n.der", "t.tpm", "t.der"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("%s written by a failed keygen", p)
		}
	}

	good, _ := os.ReadFile(key)
	corrupt := filepath.Join(dir, "corrupt.tpm")
	b := []byte(strings.Replace(string(good), "\n", "\nAAAA", 3))
	os.WriteFile(corrupt, b, 0o600)
	truncated := filepath.Join(dir, "trunc.tpm")
	os.WriteFile(truncated, good[:len(good)/2], 0o600)
	kb, err := tpm.ParseKeyBlobPEM(good)
	if err != nil {
		t.Fatal(err)
	}
	kb.Private[len(kb.Private)-4] ^= 1
	flipped := filepath.Join(dir, "flipped.tpm")
	fb, _ := kb.MarshalPEM()
	os.WriteFile(flipped, fb, 0o600)
	target := writeFile(t, filepath.Join(dir, "target"), "x\n")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"corrupted armour", []string{"sign", "--key", corrupt, "--tpm", sw.Spec(), "--sigfile", target}, "corrupt.tpm: tpm: parsing tpm key"},
		{"truncated blob", []string{"sign", "--key", truncated, "--tpm", sw.Spec(), "--sigfile", target}, "trunc.tpm: tpm: parsing tpm key"},
		{"flipped bit", []string{"sign", "--key", flipped, "--tpm", sw.Spec(), "--sigfile", target}, "flipped.tpm: tpm: load key: key blob not loadable"},
		{"other tpm", []string{"sign", "--key", key, "--tpm", "sim", "--sigfile", target}, "not loadable by this tpm"},
		{"no tpm", []string{"sign", "--key", key, "--tpm", "/dev/intact-no-tpm", "--sigfile", target}, "no tpm"},
		{"--tpm with a software key", []string{"sign", "--key", target, "--tpm", "sim", "--sigfile", target}, "not a TPM key"},
	} {
		stdout, stderr, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", c.name, code, stdout, stderr)
		}
		if _, err := os.Stat(target + ".sig"); err == nil {
			t.Fatalf("%s: a signature was written", c.name)
		}
	}
	if out, err := exec.Command("getfattr", "-n", "security.ima", target).CombinedOutput(); err == nil {
		t.Errorf("a label was written: %s", out)
	}
}
