// SPDX-License-Identifier: Apache-2.0

package rtpolicy_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/sig"
)

func TestSignAndOpen(t *testing.T) {
	for _, kt := range []string{"ec-p256", "rsa2048"} {
		key, _ := sig.GenerateKey(kt)
		certDER, _ := sig.CreateCertificate(key, "policy signer", time.Hour)
		cert, _ := x509.ParseCertificate(certDER)
		other, _ := sig.GenerateKey("ec-p256")
		otherDER, _ := sig.CreateCertificate(other, "other", time.Hour)
		otherCert, _ := x509.ParseCertificate(otherDER)
		keys := sig.NewKeyring(cert)

		p := rtpolicy.Policy{Format: 1, Name: "web", Release: 4, Digests: map[string][]string{
			"/usr/bin/b": {hexSum("b"), hexSum("a"), hexSum("b")}, "/usr/bin/a": {hexSum("a")}},
			Excludes: []string{"^/tmp/"}}
		env, err := rtpolicy.Sign(p, key)
		if err != nil {
			t.Fatal(err)
		}
		c, doc, _, err := rtpolicy.OpenSigned(env, keys)
		if err != nil {
			t.Fatalf("%s: OpenSigned: %v", kt, err)
		}
		if c.Document().Release != 4 || bytes.Contains(doc, []byte(`"sig"`)) {
			t.Errorf("%s: opened %+v / %s", kt, c.Document(), doc)
		}
		// Reformatting keeps the signature valid (it is over the canonical form).
		var m map[string]any
		json.Unmarshal(env, &m)
		pretty, _ := json.MarshalIndent(m, "", "  ")
		if _, _, _, err := rtpolicy.OpenSigned(pretty, keys); err != nil {
			t.Errorf("%s: reformatted envelope: %v", kt, err)
		}
		// Any change to what the policy accepts breaks it.
		tampered := bytes.Replace(env, []byte(`"^/tmp/"`), []byte(`"^/"`), 1)
		if _, _, _, err := rtpolicy.OpenSigned(tampered, keys); !errors.Is(err, rtpolicy.ErrBadPolicySig) {
			t.Errorf("%s: tampered envelope: %v, want ErrBadPolicySig", kt, err)
		}
		if _, _, _, err := rtpolicy.OpenSigned(env, sig.NewKeyring(otherCert)); !errors.Is(err, rtpolicy.ErrUnknownSigner) {
			t.Errorf("%s: other key: %v, want ErrUnknownSigner", kt, err)
		}
		plain, _ := json.Marshal(p)
		if _, _, _, err := rtpolicy.OpenSigned(plain, keys); !errors.Is(err, rtpolicy.ErrUnsigned) {
			t.Errorf("%s: unsigned: %v, want ErrUnsigned", kt, err)
		}
		if _, _, _, err := rtpolicy.OpenSigned([]byte(`{"intact_runtime_policy":1,"digests":{},"sig":"!!"}`), keys); !errors.Is(err, rtpolicy.ErrBadPolicySig) {
			t.Errorf("%s: junk signature: %v", kt, err)
		}
		// An envelope is not a plain policy: Parse refuses it (use OpenSigned).
		if _, err := rtpolicy.Parse(env); !errors.Is(err, rtpolicy.ErrFormat) {
			t.Errorf("%s: Parse(envelope) = %v", kt, err)
		}

		// Detached.
		canon, s, err := rtpolicy.SignDetached(p, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := rtpolicy.VerifyDetached(canon, s, keys); err != nil {
			t.Errorf("%s: detached: %v", kt, err)
		}
		changed := bytes.Replace(canon, []byte(`"release":4`), []byte(`"release":5`), 1)
		if _, _, err := rtpolicy.VerifyDetached(changed, s, keys); !errors.Is(err, rtpolicy.ErrBadPolicySig) {
			t.Errorf("%s: detached over a changed policy: %v", kt, err)
		}
		if _, _, err := rtpolicy.VerifyDetached(canon, nil, keys); !errors.Is(err, rtpolicy.ErrUnsigned) {
			t.Errorf("%s: no detached signature: %v", kt, err)
		}
	}
}

func FuzzOpenSigned(f *testing.F) {
	key, _ := sig.GenerateKey("ec-p256")
	certDER, _ := sig.CreateCertificate(key, "s", time.Hour)
	cert, _ := x509.ParseCertificate(certDER)
	keys := sig.NewKeyring(cert)
	env, _ := rtpolicy.Sign(rtpolicy.Policy{Format: 1, Digests: map[string][]string{"/a": {hexSum("a")}}}, key)
	f.Add(env)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, doc, _, err := rtpolicy.OpenSigned(b, keys)
		if err != nil {
			return
		}
		if _, err := rtpolicy.Parse(doc); err != nil || c == nil {
			t.Fatalf("opened policy does not parse: %v", err)
		}
	})
}
