// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/tpm"
)

// createKey makes a key of type kt, passes it through its PEM form, and
// loads it; the key is closed at cleanup.
func createKey(t *testing.T, tp *tpm.TPM, kt tpm.KeyType) (*tpm.Key, []byte) {
	t.Helper()
	kb, err := tp.CreateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := kb.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	kb2, err := tpm.ParseKeyBlobPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	k, err := tp.LoadKey(kb2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, pemBytes
}

func TestKeySignsDigests(t *testing.T) {
	backends(t, func(t *testing.T, open func() *tpm.TPM) {
		tp := open()
		for _, kt := range []tpm.KeyType{tpm.KeyECP256, tpm.KeyRSA2048} {
			k, _ := createKey(t, tp, kt)
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA1, crypto.SHA512} {
				d := h.New()
				d.Write([]byte("file content"))
				digest := d.Sum(nil)
				s, err := k.Sign(nil, digest, h)
				if err != nil {
					t.Fatalf("%s %v: %v", kt, h, err)
				}
				switch pub := k.Public().(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(pub, digest, s) {
						t.Errorf("%s %v: ecdsa signature does not verify", kt, h)
					}
				case *rsa.PublicKey:
					if err := rsa.VerifyPKCS1v15(pub, h, digest, s); err != nil {
						t.Errorf("%s %v: %v", kt, h, err)
					}
				default:
					t.Fatalf("public key %T", pub)
				}
				digest[0] ^= 1
				if err := sig.VerifyDigest(k.Public(), mustAlgo(t, h), digest, s); err == nil {
					t.Errorf("%s %v: signature verifies over another digest", kt, h)
				}
			}
			if _, err := k.Sign(nil, make([]byte, 31), crypto.SHA256); err == nil {
				t.Errorf("%s: signed a 31-byte sha256 digest", kt)
			}
			if _, err := k.Sign(nil, make([]byte, 32), crypto.Hash(0)); err == nil {
				t.Errorf("%s: signed without a hash", kt)
			}
			if _, err := k.Sign(nil, make([]byte, 32), &rsa.PSSOptions{Hash: crypto.SHA256}); err == nil {
				t.Errorf("%s: claimed rsa-pss", kt)
			}
		}
	})
}

func mustAlgo(t *testing.T, h crypto.Hash) digest.Algo {
	a, ok := digest.AlgoFor(h)
	if !ok {
		t.Fatalf("no label algo for %v", h)
	}
	return a
}

// TestKeyCertificate: sig's self-signed certificate made with the TPM key
// as crypto.Signer verifies and carries the key's keyid.
func TestKeyCertificate(t *testing.T) {
	tp := openSim(t)
	for _, kt := range []tpm.KeyType{tpm.KeyECP256, tpm.KeyRSA2048} {
		k, _ := createKey(t, tp, kt)
		der, err := sig.CreateCertificate(k, "tpm key", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Errorf("%s: self-signature: %v", kt, err)
		}
		id, _ := sig.KeyID(k.Public())
		if ids := sig.CertKeyIDs(cert); len(ids) == 0 || ids[0] != id {
			t.Errorf("%s: cert keyids %v, key keyid %08x", kt, ids, id)
		}
	}
}

// TestEvmctlVerifiesTPMSignedLabel proves: evmctl ima_verify --key CERT.der
// accepts a label signed by a TPM-held key (detached, --sigfile, so no
// xattr privileges are needed; the label bytes are the same).
func TestEvmctlVerifiesTPMSignedLabel(t *testing.T) {
	testenv.RequireTool(t, "evmctl")
	dir := t.TempDir()
	sw := tpmtest.Start(t, tpmtest.Options{})
	tp := openSpec(t, sw.Spec())
	defer tp.Close()
	for _, kt := range []tpm.KeyType{tpm.KeyECP256, tpm.KeyRSA2048} {
		k, _ := createKey(t, tp, kt)
		der, err := sig.CreateCertificate(k, "tpm key", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certPath := filepath.Join(dir, string(kt)+".der")
		os.WriteFile(certPath, der, 0o644)
		keyID, _ := sig.KeyID(k.Public())
		for _, algo := range []digest.Algo{digest.SHA256, digest.SHA384} {
			f := filepath.Join(dir, string(kt)+"-"+algo.String())
			content := []byte("signed in the tpm: " + f)
			os.WriteFile(f, content, 0o644)
			h, _ := algo.CryptoHash()
			d := h.New()
			d.Write(content)
			s, err := sig.SignDigest(k, keyID, algo, d.Sum(nil))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(f+".sig", s.Marshal(), 0o644)
			out, err := exec.Command("evmctl", "ima_verify", "--sigfile", "--key", certPath, f).CombinedOutput()
			if err != nil {
				t.Errorf("%s/%s: evmctl ima_verify refused the tpm-signed label: %v: %s", kt, algo, err, out)
			}
			// And it is not a tool that accepts anything.
			os.WriteFile(f, append(content, '!'), 0o644)
			if out, err := exec.Command("evmctl", "ima_verify", "--sigfile", "--key", certPath, f).CombinedOutput(); err == nil {
				t.Errorf("%s/%s: evmctl accepted a changed file: %s", kt, algo, out)
			}
		}
	}
}

func TestLoadKeyCorrupted(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{})
	other := openSpec(t, sw.Spec())
	foreign, err := other.CreateKey(tpm.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()

	tp := openSim(t)
	kb, err := tp.CreateKey(tpm.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x40; return b }
	for name, c := range map[string]*tpm.KeyBlob{
		"other tpm":   foreign,
		"private bit": {Type: kb.Type, Public: kb.Public, Private: flip(kb.Private, len(kb.Private)-5)},
		"public bit":  {Type: kb.Type, Public: flip(kb.Public, len(kb.Public)-5), Private: kb.Private},
	} {
		if k, err := tp.LoadKey(c); !errors.Is(err, tpm.ErrForeignKey) {
			if k != nil {
				k.Close()
			}
			t.Errorf("%s: err = %v, want ErrForeignKey", name, err)
		}
	}
	// A blob that claims the wrong type is refused after loading.
	wrongType := &tpm.KeyBlob{Type: tpm.KeyRSA2048, Public: kb.Public, Private: kb.Private}
	if _, err := tp.LoadKey(wrongType); !errors.Is(err, tpm.ErrMalformed) {
		t.Errorf("wrong type: err = %v, want ErrMalformed", err)
	}
	// The intact blob still loads and signs: nothing was consumed.
	k, err := tp.LoadKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	d := sha256.Sum256(nil)
	if _, err := k.Sign(nil, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	k.Close()
	if _, err := k.Sign(nil, d[:], crypto.SHA256); err == nil {
		t.Error("signed with a closed key")
	}
}

func TestKeyBlobPEM(t *testing.T) {
	kb := &tpm.KeyBlob{Type: tpm.KeyRSA2048, Public: []byte("pub"), Private: []byte("priv")}
	p, err := kb.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !tpm.IsKeyBlobPEM(p) {
		t.Error("IsKeyBlobPEM false on a key blob")
	}
	got, err := tpm.ParseKeyBlobPEM(p)
	if err != nil || got.Type != kb.Type || string(got.Private) != "priv" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	bin, _ := kb.MarshalBinary()
	for name, data := range map[string][]byte{
		"empty":         nil,
		"other type":    bytes.Replace(p, []byte(tpm.PEMType), []byte("PRIVATE KEY"), 2),
		"trailing data": append(bytes.Clone(p), "junk"...),
		"leading data":  append([]byte("junk\n"), p...),
		"header":        bytes.Replace(p, []byte("KEY-----\n"), []byte("KEY-----\nProc-Type: 4,ENCRYPTED\n\n"), 1),
	} {
		if _, err := tpm.ParseKeyBlobPEM(data); !errors.Is(err, tpm.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	for i := 0; i < len(bin); i++ {
		var k tpm.KeyBlob
		if err := k.UnmarshalBinary(bin[:i]); !errors.Is(err, tpm.ErrMalformed) {
			t.Errorf("truncated at %d: err = %v", i, err)
		}
	}
	set := func(i int, v byte) []byte { m := bytes.Clone(bin); m[i] = v; return m }
	for name, m := range map[string][]byte{
		"magic": set(0, 'x'), "version": set(4, 2), "parent": set(5, 0), "type": set(6, 3),
		"trailing": append(bytes.Clone(bin), 0), "public size 0": set(8, 0),
	} {
		var k tpm.KeyBlob
		if err := k.UnmarshalBinary(m); !errors.Is(err, tpm.ErrMalformed) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func FuzzKeyBlob(f *testing.F) {
	kb := &tpm.KeyBlob{Type: tpm.KeyECP256, Public: []byte("pub"), Private: []byte("priv")}
	b, _ := kb.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var k tpm.KeyBlob
		if err := k.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, tpm.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		b, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// TestKeyConcurrentSign: intact sign -j N signs from several goroutines
// with one key; every signature must verify.
func TestKeyConcurrentSign(t *testing.T) {
	tp := openSim(t)
	k, _ := createKey(t, tp, tpm.KeyECP256)
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		go func() {
			d := sha256.Sum256([]byte{byte(i)})
			s, err := k.Sign(nil, d[:], crypto.SHA256)
			if err == nil && !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), d[:], s) {
				err = errors.New("signature does not verify")
			}
			errs <- err
		}()
	}
	for i := 0; i < 16; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
