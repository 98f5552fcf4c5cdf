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
	"slices"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// The EK certificate is read from its NV index (0x01c0000a, ECC) when a
// manufacturer provisioned one, and is absent otherwise.
func TestEndorsementKeyCertificate(t *testing.T) {
	tp := openSim(t)
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
	writeNV(t, tp.Transport(), 0x01c0000a, der)
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
	tp := openSim(t)
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

// writeNV defines a platform NV index holding data (as a maker
// provisions EK certificates and their chain).
func writeNV(t *testing.T, tr transport.TPM, index uint32, data []byte) {
	t.Helper()
	nvPub := tpm2.TPMSNVPublic{
		NVIndex: tpm2.TPMHandle(index), NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{PPWrite: true, PPRead: true, OwnerRead: true, AuthRead: true, NoDA: true, PlatformCreate: true},
		DataSize:   uint16(len(data)),
	}
	if _, err := (tpm2.NVDefineSpace{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)},
		PublicInfo: tpm2.New2B(nvPub),
	}).Execute(tr); err != nil {
		t.Fatalf("defining nv index 0x%x: %v", index, err)
	}
	name, err := tpm2.NVName(&nvPub)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 512 {
		end := min(off+512, len(data))
		if _, err := (tpm2.NVWrite{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHPlatform, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: *name},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data[off:end]},
			Offset:     uint16(off),
		}).Execute(tr); err != nil {
			t.Fatalf("writing nv index 0x%x: %v", index, err)
		}
	}
}

// The maker's EK certificate chain in NV 0x01c00100-0x01c001ff is read
// in index order, several certificates in one index split apart, the
// index's padding left out.
func TestEndorsementKeyChain(t *testing.T) {
	tp := openSim(t)
	cert := func(cn string) []byte {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	a, b, c := cert("intermediate A"), cert("intermediate B"), cert("root C")
	writeNV(t, tp.Transport(), 0x01c00102, c)
	writeNV(t, tp.Transport(), 0x01c00100, append(append(slices.Clone(a), b...), bytes.Repeat([]byte{0xff}, 40)...))
	ek, err := tp.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(ek.Chain) != 3 || !bytes.Equal(ek.Chain[0], a) || !bytes.Equal(ek.Chain[1], b) || !bytes.Equal(ek.Chain[2], c) {
		t.Fatalf("chain of %d certificates, want A, B (index 0x01c00100) then C (0x01c00102)", len(ek.Chain))
	}
}
