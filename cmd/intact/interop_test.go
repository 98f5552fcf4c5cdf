// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

// evmctl runs the real evmctl (Debian's ima-evm-utils) and returns its
// combined output and whether it exited 0.
func evmctl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	testenv.RequireTool(t, "evmctl")
	out, err := exec.Command("evmctl", args...).CombinedOutput()
	return string(out), err == nil
}

// opensslKey makes a key and DER certificate the way the ima-evm-utils
// documentation does (openssl req with subjectKeyIdentifier=hash).
func opensslKey(t *testing.T, dir, name, newkey string, extra ...string) (keyPEM, certDER string) {
	t.Helper()
	testenv.RequireTool(t, "openssl")
	cnf := filepath.Join(dir, "genkey.cnf")
	os.WriteFile(cnf, []byte(`[ req ]
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts
[ req_distinguished_name ]
O = test
CN = intact interop test
[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
`), 0o644)
	keyPEM, certDER = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".der")
	args := append([]string{"req", "-x509", "-new", "-nodes", "-utf8", "-sha256", "-days", "30", "-batch",
		"-config", cnf, "-newkey", newkey}, extra...)
	args = append(args, "-outform", "DER", "-out", certDER, "-keyout", keyPEM)
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return keyPEM, certDER
}

var interopKeys = []struct {
	name, intactType, opensslNewkey string
	opensslExtra                    []string
}{
	{"rsa2048", "rsa2048", "rsa:2048", nil},
	{"ec-p256", "ec-p256", "ec", []string{"-pkeyopt", "ec_paramgen_curve:prime256v1"}},
	{"ec-p384", "ec-p384", "ec", []string{"-pkeyopt", "ec_paramgen_curve:secp384r1"}},
}

// TestEvmctlSignsIntactVerifies: files signed by evmctl (with keys made by
// openssl) verify with intact.
func TestEvmctlSignsIntactVerifies(t *testing.T) {
	dir := xattrDir(t)
	for _, k := range interopKeys {
		key, cert := opensslKey(t, dir, "ossl-"+k.name, k.opensslNewkey, k.opensslExtra...)
		for _, algo := range []string{"sha256", "sha384"} {
			f := writeFile(t, filepath.Join(dir, "evmctl-"+k.name+"-"+algo), "content signed by evmctl "+k.name+algo+"\n")
			if out, ok := evmctl(t, "ima_sign", "-a", algo, "--key", key, f); !ok {
				t.Fatalf("evmctl ima_sign %s %s: %s", k.name, algo, out)
			}
			if v := verdicts(t, 0, "--cert", cert, f); v[f] != "ok" {
				t.Errorf("%s/%s: evmctl's label verifies as %q with intact", k.name, algo, v[f])
			}
			// PEM copy of the same certificate works too.
			pemCert := cert + ".pem"
			exec.Command("openssl", "x509", "-inform", "DER", "-in", cert, "-out", pemCert).Run()
			if v := verdicts(t, 0, "--cert", pemCert, f); v[f] != "ok" {
				t.Errorf("%s/%s with a PEM certificate: %q", k.name, algo, v[f])
			}
		}
	}
}

// TestIntactSignsEvmctlVerifies: files signed by intact (keys made by
// intact keygen) pass evmctl ima_verify; intact's RSA labels are
// byte-identical to evmctl's with the same key.
func TestIntactSignsEvmctlVerifies(t *testing.T) {
	dir := xattrDir(t)
	for _, k := range interopKeys {
		key, cert := filepath.Join(dir, "intact-"+k.name+".pem"), filepath.Join(dir, "intact-"+k.name+".der")
		mustRun(t, 0, "keygen", "--type", k.intactType, "--key", key, "--cert", cert)
		for _, algo := range []string{"sha256", "sha384"} {
			f := writeFile(t, filepath.Join(dir, "intact-"+k.name+"-"+algo), "content signed by intact "+k.name+algo+"\n")
			mustRun(t, 0, "sign", "--key", key, "-a", algo, f)
			ours := getLabel(t, f)
			if out, ok := evmctl(t, "ima_verify", "--key", cert, f); !ok {
				t.Errorf("%s/%s: evmctl ima_verify refused intact's label: %s", k.name, algo, out)
			}
			if !strings.HasPrefix(k.name, "rsa") {
				continue
			}
			if out, ok := evmctl(t, "ima_sign", "-a", algo, "--key", key, f); !ok {
				t.Fatalf("evmctl ima_sign with intact's key: %s", out)
			}
			if theirs := getLabel(t, f); !bytes.Equal(ours, theirs) {
				t.Errorf("%s/%s: labels differ\nintact: %x\nevmctl: %x", k.name, algo, ours, theirs)
			}
		}
	}
	// An RSA key made by openssl, signed by both tools: identical bytes.
	key, _ := opensslKey(t, dir, "ossl-rsa-identical", "rsa:2048")
	f := writeFile(t, filepath.Join(dir, "identical"), "same bytes\n")
	evmctl(t, "ima_sign", "-a", "sha256", "--key", key, f)
	theirs := getLabel(t, f)
	mustRun(t, 0, "sign", "--key", key, f)
	if ours := getLabel(t, f); !bytes.Equal(ours, theirs) {
		t.Errorf("openssl RSA key: labels differ\nintact: %x\nevmctl: %x", ours, theirs)
	}
}

// TestHashLabelsIdentical: intact hash writes exactly what evmctl ima_hash
// writes, for every algorithm evmctl and intact share.
func TestHashLabelsIdentical(t *testing.T) {
	dir := xattrDir(t)
	for i, algo := range []string{"sha256", "sha384", "sha512", "sha1", "sha224"} {
		f := writeFile(t, filepath.Join(dir, "hash-"+algo), strings.Repeat("x", 1000*i)+"hello world\n")
		if out, ok := evmctl(t, "ima_hash", "-a", algo, f); !ok {
			t.Fatalf("evmctl ima_hash -a %s: %s", algo, out)
		}
		theirs := getLabel(t, f)
		mustRun(t, 0, "hash", "-a", algo, f)
		if ours := getLabel(t, f); !bytes.Equal(ours, theirs) {
			t.Errorf("%s: intact %x, evmctl %x", algo, ours, theirs)
		}
		if v := verdicts(t, 0, f); v[f] != "ok" {
			t.Errorf("%s: hash label verifies as %q", algo, v[f])
		}
	}
}

// TestSigfileInterop: detached signatures (PATH.sig) both ways.
func TestSigfileInterop(t *testing.T) {
	dir := xattrDir(t)
	key, cert := opensslKey(t, dir, "sigfile", "rsa:2048")
	tree := filepath.Join(dir, "tree")
	os.Mkdir(tree, 0o755)
	a := writeFile(t, filepath.Join(tree, "a"), "signed by intact\n")
	b := writeFile(t, filepath.Join(tree, "b"), "signed by evmctl\n")
	mustRun(t, 0, "sign", "--sigfile", "--key", key, "-r", tree)
	mustRun(t, 0, "sign", "--sigfile", "--key", key, "-r", tree) // .sig files are not signed themselves
	if _, err := os.Stat(a + ".sig.sig"); err == nil {
		t.Fatal("sign --sigfile -r signed a detached signature")
	}
	os.Remove(b + ".sig")
	if out, ok := evmctl(t, "ima_sign", "--sigfile", "--key", key, b); !ok {
		t.Fatal(out)
	}
	for _, f := range []string{a, b} {
		xattrRemove(f, "security.ima") // only the .sig files carry the labels now
	}
	if v := verdicts(t, 0, "--sigfile", "--cert", cert, "-r", tree); v[a] != "ok" || v[b] != "ok" || len(v) != 2 {
		t.Errorf("verify --sigfile: %v", v)
	}
	if out, ok := evmctl(t, "ima_verify", "--sigfile", "--key", cert, a); !ok {
		t.Errorf("evmctl ima_verify --sigfile refused intact's detached signature: %s", out)
	}
	os.WriteFile(a, []byte("changed\n"), 0o644)
	if v := verdicts(t, 1, "--sigfile", "--cert", cert, a); v[a] != "content-changed" {
		t.Errorf("changed file with a detached signature: %v", v)
	}
}

// TestRequireSignature: --require-signature fails files vouched for only by
// a digest label; an IMA signature, or an EVM portable signature over a
// digest label (evmctl sign --imahash --portable), satisfies it.
func TestRequireSignature(t *testing.T) {
	dir := xattrDir(t)
	key, cert := opensslKey(t, dir, "reqsig", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
	hashed := writeFile(t, filepath.Join(dir, "hashed"), "digest only\n")
	signed := writeFile(t, filepath.Join(dir, "signed"), "signed\n")
	evmSigned := writeFile(t, filepath.Join(dir, "evm-signed"), "digest + portable evm signature\n")
	mustRun(t, 0, "hash", hashed)
	mustRun(t, 0, "sign", "--key", key, signed)
	if out, ok := evmctl(t, "sign", "--imahash", "--portable", "--key", key, evmSigned); !ok {
		t.Fatalf("evmctl sign --imahash --portable: %s", out)
	}
	if v := verdicts(t, 0, "--cert", cert, hashed, signed, evmSigned); v[hashed] != "ok" || v[signed] != "ok" || v[evmSigned] != "ok" {
		t.Fatalf("without --require-signature: %v", v)
	}
	v := verdicts(t, 1, "--require-signature", "--cert", cert, hashed, signed, evmSigned)
	if v[hashed] != "unsigned" || v[signed] != "ok" || v[evmSigned] != "ok" {
		t.Errorf("with --require-signature: %v", v)
	}
}
