// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/tpm"
)

// The EK certificate is read from its NV index (0x01c0000a, ECC) when a
// manufacturer provisioned one, and is absent otherwise.
func TestEndorsementKeyCertificate(t *testing.T) {
	tp, err := tpm.OpenSimulator()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	ek, err := tp.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	if ek.Cert != nil {
		t.Fatalf("a fresh simulator has an EK certificate (%d bytes)", len(ek.Cert))
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	ekKey, err := tpm2.Pub(*pub)
	if err != nil {
		t.Fatal(err)
	}
	// A manufacturer CA certifies the EK (a certificate over 512 bytes, read in
	// several NV chunks).
	ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ek", Organization: []string{string(bytes.Repeat([]byte("x"), 400))}},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ekKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	nvPub := tpm2.TPMSNVPublic{
		NVIndex: 0x01c0000a, NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{PPWrite: true, PPRead: true, OwnerRead: true, AuthRead: true, NoDA: true, PlatformCreate: true},
		DataSize:   uint16(len(der)),
	}
	tr := tp.Transport()
	if _, err := (tpm2.NVDefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)},
		PublicInfo: tpm2.New2B(nvPub),
	}).Execute(tr); err != nil {
		t.Fatalf("defining the EK certificate index: %v", err)
	}
	name, err := tpm2.NVName(&nvPub)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(der); off += 512 {
		end := min(off+512, len(der))
		if _, err := (tpm2.NVWrite{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: 0x01c0000a, Name: *name},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: der[off:end]},
			Offset:     uint16(off),
		}).Execute(tr); err != nil {
			t.Fatalf("writing the EK certificate: %v", err)
		}
	}
	ek, err = tp.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ek.Cert, der) {
		t.Fatalf("EK certificate: got %d bytes, want the %d written", len(ek.Cert), len(der))
	}
}

// ActivateCredential recovers a credential made in software for this
// TPM's EK and the AK's name, and fails for a credential bound to another
// name.
func TestActivateCredential(t *testing.T) {
	tp, err := tpm.OpenSimulator()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	ek, err := tp.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	other, err := tp.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	key, err := tpm2.ImportEncapsulationKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	blob, enc, err := tpm2.CreateCredential(rand.Reader, key, ak.Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.ActivateCredential(ak, blob, enc)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("ActivateCredential = %q, %v", got, err)
	}
	if got, err := tp.ActivateCredential(other, blob, enc); err == nil {
		t.Fatalf("a credential for one AK activated with another: %q", got)
	}
}
