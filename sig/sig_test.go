// SPDX-License-Identifier: Apache-2.0

package sig

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
)

func TestSignVerifyClassification(t *testing.T) {
	for _, kt := range KeyTypes[:3] {
		key, err := GenerateKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		id, err := KeyID(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		for _, algo := range []digest.Algo{digest.SHA256, digest.SHA384} {
			var d []byte
			if algo == digest.SHA256 {
				s := sha256.Sum256([]byte("file"))
				d = s[:]
			} else {
				s := sha512.Sum384([]byte("file"))
				d = s[:]
			}
			s, err := SignDigest(key, id, algo, d)
			if err != nil {
				t.Fatal(err)
			}
			if s.KeyID != id || s.Algo != algo || s.Version != 2 || s.Type != label.TypeDigsig {
				t.Fatalf("%s: header %+v", kt, s)
			}
			if err := VerifyDigest(key.Public(), algo, d, s.Sig); err != nil {
				t.Errorf("%s/%s: valid signature: %v", kt, algo, err)
			}
			other := bytes.Clone(d)
			other[0] ^= 1
			if err := VerifyDigest(key.Public(), algo, other, s.Sig); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("%s/%s: other digest: %v, want ErrDigestMismatch", kt, algo, err)
			}
			broken := bytes.Clone(s.Sig)
			broken[0] ^= 0x80
			if kt == "rsa2048" {
				broken = bytes.Clone(s.Sig)
				broken[len(broken)/2] ^= 1
			}
			if err := VerifyDigest(key.Public(), algo, d, broken); !errors.Is(err, ErrBadSignature) {
				t.Errorf("%s/%s: damaged signature: %v, want ErrBadSignature", kt, algo, err)
			}
			if err := VerifyDigest(key.Public(), algo, d, s.Sig[:len(s.Sig)-1]); !errors.Is(err, ErrBadSignature) {
				t.Errorf("%s/%s: short signature: %v, want ErrBadSignature", kt, algo, err)
			}
		}
	}
}

func TestCertificateKeyIDs(t *testing.T) {
	key, _ := GenerateKey("ec-p256")
	der, err := CreateCertificate(key, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := KeyID(key.Public())
	if got := binary.BigEndian.Uint32(cert.SubjectKeyId[16:]); got != id {
		t.Fatalf("SKID tail %08x, keyid %08x", got, id)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Fatalf("key usage %v, CA %v", cert.KeyUsage, cert.IsCA)
	}
	if ids := CertKeyIDs(cert); len(ids) != 1 || ids[0] != id {
		t.Fatalf("CertKeyIDs = %x", ids)
	}
	// A certificate whose SKID is not the key hash is found under both.
	cert.SubjectKeyId = []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
	k := NewKeyring(cert)
	if len(k.Lookup(0x01020304)) != 1 || len(k.Lookup(id)) != 1 || k.Lookup(0xdeadbeef) != nil {
		t.Fatal("keyring lookups by SKID tail and computed keyid")
	}
	pemKey, _ := MarshalPrivateKey(key)
	back, err := ParsePrivateKey(append([]byte("junk\n"), pemKey...))
	if err != nil || !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatalf("ParsePrivateKey round trip: %v", err)
	}
	if _, err := ParsePrivateKey([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")); err == nil {
		t.Fatal("encrypted key accepted")
	}
	if _, err := ParseCertificates([]byte("garbage")); err == nil {
		t.Fatal("garbage certificate accepted")
	}
}
