// SPDX-License-Identifier: Apache-2.0

package sim

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/tpm"
)

func newTPM(t *testing.T) *SoftTPM {
	t.Helper()
	st, err := NewSoftTPM(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The quote is one package quote accepts with the AK's public area,
// over the nonce and the PCR values returned.
func TestQuoteVerifies(t *testing.T) {
	st := newTPM(t)
	ak, err := quote.ParseAK(st.AK().Public)
	if err != nil {
		t.Fatalf("the AK is not acceptable to the verifier: %v", err)
	}
	if !bytes.Equal(ak.Name(), st.AK().Name) {
		t.Fatal("AK name differs from the verifier's")
	}
	nonce := bytes.Repeat([]byte{7}, attest.NonceSize)
	sel := tpm.QuoteSelection{digest.SHA256: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13}}
	q, vals, err := st.ReadQuotedPCRs(st.AK(), nonce, sel)
	if err != nil {
		t.Fatal(err)
	}
	v, err := quote.Verify(ak, q.Attest, q.Signature, nonce, vals)
	if err != nil {
		t.Fatalf("quote does not verify: %v", err)
	}
	if v.Clock.ResetCount != st.resets || !v.Clock.Safe {
		t.Errorf("clock %+v", v.Clock)
	}
	// Another nonce, another AK, other values: refused.
	if _, err := quote.Verify(ak, q.Attest, q.Signature, bytes.Repeat([]byte{8}, 32), vals); !errors.Is(err, quote.ErrNonce) {
		t.Errorf("other nonce: %v", err)
	}
	other, _ := quote.ParseAK(newTPM(t).AK().Public)
	if _, err := quote.Verify(other, q.Attest, q.Signature, nonce, vals); !errors.Is(err, quote.ErrSignature) {
		t.Errorf("other AK: %v", err)
	}
	vals[digest.SHA256][13] = bytes.Repeat([]byte{0xff}, 32)
	if _, err := quote.Verify(ak, q.Attest, q.Signature, nonce, vals); !errors.Is(err, quote.ErrPCRDigest) {
		t.Errorf("other values: %v", err)
	}
}

// The hand-written marshalling is go-tpm's.
func TestMarshalQuote(t *testing.T) {
	c := tpm2.TPMSClockInfo{Clock: 123456789, ResetCount: 0xdeadbeef, RestartCount: 7, Safe: true}
	bitmap := []byte{0xff, 0x23, 0x00}
	digest := bytes.Repeat([]byte{0xaa}, 32)
	qname := append([]byte{0, 0x0b}, bytes.Repeat([]byte{1}, 32)...)
	nonce := bytes.Repeat([]byte{2}, 32)
	want := tpm2.Marshal(tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: qname}, ExtraData: tpm2.TPM2BData{Buffer: nonce},
		ClockInfo: c, FirmwareVersion: firmware,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: bitmap}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest},
		}),
	})
	if got := marshalQuote(qname, nonce, c, firmware, bitmap, digest); !bytes.Equal(got, want) {
		t.Errorf("quote:\n got %x\nwant %x", got, want)
	}
	r, s := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
	wantSig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s}})})
	if got := marshalECDSASignature(r, s); !bytes.Equal(got, wantSig) {
		t.Errorf("signature:\n got %x\nwant %x", got, wantSig)
	}
}

// A credential made as the verifier makes it (MakeCredential in
// software against the EK) activates for this EK and AK name only.
func TestActivateCredential(t *testing.T) {
	st := newTPM(t)
	ek, err := st.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		t.Fatal(err)
	}
	if a := pub.ObjectAttributes; !a.Restricted || !a.Decrypt || !a.FixedTPM {
		t.Fatal("EK attributes are not the template's")
	}
	key, err := tpm2.ImportEncapsulationKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{9}, 32)
	blob, enc, err := tpm2.CreateCredential(rand.Reader, key, st.AK().Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.ActivateCredential(st.AK(), blob, enc)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("activate: %x, %v", got, err)
	}
	// Made for another AK's name: refused.
	other := newTPM(t)
	blob2, enc2, err := tpm2.CreateCredential(rand.Reader, key, other.AK().Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ActivateCredential(st.AK(), blob2, enc2); !errors.Is(err, ErrActivation) {
		t.Errorf("credential for another AK: %v", err)
	}
	// Made for this AK but another TPM's EK: refused.
	opub, _ := tpm2.Unmarshal[tpm2.TPMTPublic](mustEK(t, other))
	okey, _ := tpm2.ImportEncapsulationKey(opub)
	blob3, enc3, err := tpm2.CreateCredential(rand.Reader, okey, st.AK().Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ActivateCredential(st.AK(), blob3, enc3); !errors.Is(err, ErrActivation) {
		t.Errorf("credential for another EK: %v", err)
	}
	if _, err := st.ActivateCredential(st.AK(), []byte{1}, []byte{2, 3}); !errors.Is(err, ErrActivation) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := st.ActivateCredential(other.AK(), blob, enc); !errors.Is(err, ErrWrongAK) {
		t.Errorf("AK of another TPM: %v", err)
	}
}

func mustEK(t *testing.T, st *SoftTPM) []byte {
	ek, err := st.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	return ek.Public
}

// The list starts with a matching boot_aggregate, replays to the PCR it
// extends, is served from an offset in chunks, and its records pass the
// fleet policy.
func TestMemLog(t *testing.T) {
	st := newTPM(t)
	l, err := NewMemLog(st)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p, d := File(i)
		if err := l.Append(p, d); err != nil {
			t.Fatal(err)
		}
	}
	c, err := l.Read(0, attest.MaxLogChunk)
	if err != nil || c.Count != 6 || c.More {
		t.Fatalf("read: %+v, %v", c, err)
	}
	list, err := mlog.ParseBinary(c.Data, mlog.Options{Bank: digest.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	pcrs, _ := st.PCRs([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, LogPCR})
	if err := list.CheckBootAggregate(digest.PCRs{digest.SHA256: pcrs}); err != nil {
		t.Errorf("boot_aggregate: %v", err)
	}
	running := make([]byte, 32)
	for _, r := range list.UnverifiedRecords() {
		d, _ := r.ExtendDigest(digest.SHA256)
		h := crypto.SHA256.New()
		h.Write(running)
		h.Write(d)
		running = h.Sum(nil)
	}
	if !bytes.Equal(running, pcrs[LogPCR]) {
		t.Error("the list does not replay to the PCR")
	}
	pol, err := rtpolicy.Parse(Policy("fleet"))
	if err != nil {
		t.Fatal(err)
	}
	recs := list.UnverifiedRecords()
	for i := range recs {
		if f := pol.Evaluate(int64(i), &recs[i]); f != nil {
			t.Errorf("fleet policy: %+v", f)
		}
	}
	// A small chunk size pages.
	c, err = l.Read(2, len(c.Data)/3)
	if err != nil || c.Start != 2 || c.Count == 0 || !c.More {
		t.Fatalf("paged read: %+v, %v", c, err)
	}
	if c, err := l.Read(6, 100); err != nil || c.Count != 0 || c.More {
		t.Fatalf("read at the end: %+v, %v", c, err)
	}
}
