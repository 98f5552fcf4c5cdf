// SPDX-License-Identifier: Apache-2.0

package appraise

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/sig"
)

func evmTestInput() evm.Input {
	return evm.Input{
		Xattrs: map[string][]byte{evm.XattrIMA: {4, 4, 1, 2, 3}, evm.XattrSELinux: []byte("system_u:object_r:bin_t:s0\x00")},
		Misc:   evm.Misc{Ino: 12, Generation: 34, UID: 0, GID: 0, Mode: 0o100755},
		UUID:   bytes.Repeat([]byte{0xab}, 16),
	}
}

func signEVM(t *testing.T, keyType string, typ label.Type, in evm.Input) (*evm.Value, *sig.Keyring) {
	t.Helper()
	k, err := sig.GenerateKey(keyType)
	if err != nil {
		t.Fatal(err)
	}
	der, err := sig.CreateCertificate(k, "evm test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sig.KeyID(k.Public())
	msg, err := evm.Config{}.Message(typ, in, evm.NativeLayout())
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := evm.Digest(digest.SHA256, msg)
	s, err := sig.SignDigest(k, id, digest.SHA256, sum)
	if err != nil {
		t.Fatal(err)
	}
	s.Type = typ
	v, err := evm.Parse(s.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return v, sig.NewKeyring(cert)
}

// TestCheckEVMSignatures: each metadata change is MetadataChanged for full
// signatures; portable ones ignore inode, generation and UUID only.
func TestCheckEVMSignatures(t *testing.T) {
	changes := map[string]func(*evm.Input){
		"uid":        func(in *evm.Input) { in.Misc.UID = 1000 },
		"setuid":     func(in *evm.Input) { in.Misc.Mode |= 0o4000 },
		"selinux":    func(in *evm.Input) { in.Xattrs[evm.XattrSELinux] = []byte("unconfined_u\x00") },
		"capability": func(in *evm.Input) { in.Xattrs[evm.XattrCapability] = []byte{1, 0, 0, 2} },
		"ima":        func(in *evm.Input) { in.Xattrs[evm.XattrIMA] = []byte{4, 4, 9} },
		"ino":        func(in *evm.Input) { in.Misc.Ino++ },
		"generation": func(in *evm.Input) { in.Misc.Generation++ },
		"uuid":       func(in *evm.Input) { in.UUID = bytes.Repeat([]byte{0xcd}, 16) },
	}
	inodeBound := map[string]bool{"ino": true, "generation": true, "uuid": true}
	for _, keyType := range []string{"ec-p256", "rsa2048"} {
		for _, typ := range []label.Type{label.TypeDigsig, label.TypePortableDigsig} {
			v, keys := signEVM(t, keyType, typ, evmTestInput())
			o := &EVMOptions{}
			if got, reason := CheckEVM(v, evmTestInput(), o, keys); got != OK {
				t.Fatalf("%s %s: untouched: %s (%s)", keyType, typ, got, reason)
			}
			if got, _ := CheckEVM(v, evmTestInput(), o, sig.NewKeyring()); got != UnknownKey {
				t.Errorf("%s %s: no certificate: %s", keyType, typ, got)
			}
			for name, change := range changes {
				in := evmTestInput()
				change(&in)
				want := MetadataChanged
				if typ == label.TypePortableDigsig && inodeBound[name] {
					want = OK
				}
				if got, reason := CheckEVM(v, in, o, keys); got != want {
					t.Errorf("%s %s: %s changed: %s (%s), want %s", keyType, typ, name, got, reason, want)
				}
			}
			broken := *v.Sig
			broken.Sig = bytes.Clone(v.Sig.Sig)
			broken.Sig[0] ^= 0xff // DER tag / top of the RSA block
			bv := &evm.Value{Type: typ, Sig: &broken}
			if got, _ := CheckEVM(bv, evmTestInput(), o, keys); got != BadSignature {
				t.Errorf("%s %s: broken signature: %s, want bad-signature", keyType, typ, got)
			}
		}
	}
}

func TestCheckEVMHMAC(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	msg, _ := evm.Config{}.Message(label.TypeHMAC, evmTestInput(), evm.NativeLayout())
	v, _ := evm.NewHMAC(key, msg)
	o := &EVMOptions{HMACKey: key}
	if got, reason := CheckEVM(v, evmTestInput(), o, nil); got != OK {
		t.Fatalf("untouched: %s (%s)", got, reason)
	}
	in := evmTestInput()
	in.Misc.Ino++
	if got, _ := CheckEVM(v, in, o, nil); got != MetadataChanged {
		t.Errorf("new inode: %s", got)
	}
	in = evmTestInput()
	in.Xattrs[evm.XattrAppArmor] = []byte("unconfined")
	if got, _ := CheckEVM(v, in, o, nil); got != MetadataChanged {
		t.Errorf("apparmor label added: %s", got)
	}
	if got, _ := CheckEVM(v, evmTestInput(), &EVMOptions{HMACKey: bytes.Repeat([]byte{2}, 32)}, nil); got != MetadataChanged {
		t.Errorf("other key: %s", got)
	}
}
