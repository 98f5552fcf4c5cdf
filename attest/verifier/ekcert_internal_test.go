// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/tpm"
)

func TestCheckEKCert(t *testing.T) {
	tp, err := tpm.OpenSimulator()
	if err != nil {
		t.Fatal(err)
	}
	ek, err := tp.EndorsementKey()
	tp.Close()
	if err != nil {
		t.Fatal(err)
	}
	ekKey, err := ekPublicKey(ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certFor := func(pub any) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, ca)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	e := &attest.Enrollment{EKPublic: ek.Public}
	if err := checkEKCert(e); err != nil {
		t.Fatalf("no certificate: %v", err)
	}
	e.EKCert = certFor(ekKey)
	if err := checkEKCert(e); err != nil {
		t.Fatalf("the EK's certificate: %v", err)
	}
	for _, bad := range [][]byte{certFor(&other.PublicKey), []byte("junk")} {
		e.EKCert = bad
		var se *SecurityError
		if err := checkEKCert(e); !errors.As(err, &se) || se.Reason != ReasonEnrollment {
			t.Errorf("checkEKCert(foreign or junk certificate) = %v", err)
		}
	}
}
