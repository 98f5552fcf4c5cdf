// SPDX-License-Identifier: Apache-2.0

package quote

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/digest"
)

// goTPMAttest decodes b with go-tpm, as Verify did before parse.go.
func goTPMAttest(b []byte) (*attestQuote, error) {
	att, err := unmarshalLoose[tpm2.TPMSAttest](b)
	if err != nil {
		return nil, err
	}
	if att.Type != tpm2.TPMSTAttestQuote {
		return nil, ErrNotQuote
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return nil, err
	}
	return &attestQuote{extraData: att.ExtraData.Buffer, clock: att.ClockInfo, firmware: att.FirmwareVersion,
		pcrSelect: info.PCRSelect, pcrDigest: info.PCRDigest.Buffer}, nil
}

func sameAttest(a, b *attestQuote) bool {
	if !bytes.Equal(a.extraData, b.extraData) || a.clock != b.clock || a.firmware != b.firmware ||
		!bytes.Equal(a.pcrDigest, b.pcrDigest) || len(a.pcrSelect.PCRSelections) != len(b.pcrSelect.PCRSelections) {
		return false
	}
	for i, s := range a.pcrSelect.PCRSelections {
		o := b.pcrSelect.PCRSelections[i]
		if s.Hash != o.Hash || !bytes.Equal(s.PCRSelect, o.PCRSelect) {
			return false
		}
	}
	return true
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randomQuote(r *rand.Rand) []byte {
	var sels []tpm2.TPMSPCRSelection
	for i := 0; i < r.IntN(4); i++ {
		sels = append(sels, tpm2.TPMSPCRSelection{Hash: tpm2.TPMIAlgHash(r.Uint32()), PCRSelect: randBytes(r, r.IntN(5))})
	}
	return tpm2.Marshal(tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: randBytes(r, r.IntN(70))},
		ExtraData:       tpm2.TPM2BData{Buffer: randBytes(r, r.IntN(65))},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: r.Uint64(), ResetCount: r.Uint32(), RestartCount: r.Uint32(), Safe: r.IntN(2) == 1},
		FirmwareVersion: r.Uint64(),
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: sels},
			PCRDigest: tpm2.TPM2BDigest{Buffer: randBytes(r, r.IntN(65))},
		}),
	})
}

// The hand-written decoders read what go-tpm reads, and fail where it
// fails (truncations).
func TestParseMatchesGoTPM(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := randomQuote(r)
		want, err := goTPMAttest(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseAttestQuote(append(bytes.Clone(b), randBytes(r, r.IntN(3))...)) // trailing bytes ignored, as before
		if err != nil || !sameAttest(got, want) {
			t.Fatalf("%x:\n got %+v, %v\nwant %+v", b, got, err, want)
		}
		cut := r.IntN(len(b))
		if _, err := parseAttestQuote(b[:cut]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d of %d: %v", cut, len(b), err)
		}
	}
	other := tpm2.Marshal(tpm2.TPMSAttest{Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestCertify,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{})})
	if _, err := parseAttestQuote(other); !errors.Is(err, ErrNotQuote) {
		t.Errorf("certify structure: %v", err)
	}
	bad := randomQuote(r)
	bad[0] ^= 1
	if _, err := parseAttestQuote(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad magic: %v", err)
	}

	for i := 0; i < 500; i++ {
		var b []byte
		var want signature
		if i%2 == 0 {
			want = signature{alg: tpm2.TPMAlgECDSA, hash: tpm2.TPMAlgID(r.Uint32()), r: randBytes(r, r.IntN(50)), s: randBytes(r, r.IntN(50))}
			b = tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
				&tpm2.TPMSSignatureECC{Hash: want.hash, SignatureR: tpm2.TPM2BECCParameter{Buffer: want.r}, SignatureS: tpm2.TPM2BECCParameter{Buffer: want.s}})})
		} else {
			want = signature{alg: tpm2.TPMAlgRSASSA, hash: tpm2.TPMAlgID(r.Uint32()), sig: randBytes(r, r.IntN(300))}
			b = tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
				&tpm2.TPMSSignatureRSA{Hash: want.hash, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: want.sig}})})
		}
		got, err := parseSignature(b)
		if err != nil || got.alg != want.alg || got.hash != want.hash || !bytes.Equal(got.r, want.r) || !bytes.Equal(got.s, want.s) || !bytes.Equal(got.sig, want.sig) {
			t.Fatalf("%x: got %+v, %v; want %+v", b, got, err, want)
		}
		if _, err := parseSignature(b[:r.IntN(len(b))]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated signature: %v", err)
		}
	}
	hmacSig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgHMAC, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgHMAC, &tpm2.TPMTHA{HashAlg: tpm2.TPMAlgSHA256, Digest: make([]byte, 32)})})
	if _, err := parseSignature(hmacSig); !errors.Is(err, ErrSignature) {
		t.Errorf("hmac signature: %v", err)
	}
}

// complete reports whether go-tpm's reading of b re-marshals to a
// prefix of b (it read every field from b, none past its end).
func complete(b []byte) bool {
	att, err := unmarshalLoose[tpm2.TPMSAttest](b)
	return err == nil && bytes.HasPrefix(b, tpm2.Marshal(*att))
}

// FuzzParseAttest: on any bytes the hand-written decoder agrees with
// go-tpm's for quote structures.
func FuzzParseAttest(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 8; i++ {
		f.Add(randomQuote(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseAttestQuote(b)
		want, werr := goTPMAttest(b)
		switch {
		case werr == nil && err == nil:
			if !sameAttest(got, want) {
				t.Fatalf("differ:\n got %+v\nwant %+v", got, want)
			}
		case werr == nil && len(b) >= 4 && binary.BigEndian.Uint32(b) != uint32(tpm2.TPMGeneratedValue):
			// go-tpm does not check the magic (its "check" tag is not
			// enforced); this must.
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("not TPM-generated: %v", err)
			}
		case werr == nil && len(want.pcrSelect.PCRSelections) <= maxSelections && complete(b):
			// (go-tpm also decodes some truncated structures; this
			// refuses them.)
			t.Fatalf("go-tpm decodes a quote this refuses: %v", err)
		case err == nil && !errors.Is(werr, ErrNotQuote):
			t.Fatalf("this decodes what go-tpm refuses (%v): %+v", werr, got)
		}
	})
}

// A structure signed by the AK that is not TPM-generated is refused. A
// restricted AK signs such data through TPM2_Sign with a hash ticket
// (which TPM2_Hash issues for any data that does not start with
// TPM_GENERATED_VALUE): accepting it would let software on the attested
// machine make up PCR values. go-tpm's decoder does not check the magic.
func TestVerifyRequiresTPMGenerated(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := tpm2.TPMTPublic{
		Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, Restricted: true, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Scheme:  tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
			Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
		}),
	}
	ak, err := ParseAK(tpm2.Marshal(pub))
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{5}, 32)
	pcr := bytes.Repeat([]byte{6}, 32)
	pcrSum := sha256.Sum256(pcr)
	sign := func(magic tpm2.TPMGenerated) ([]byte, []byte) {
		att := tpm2.Marshal(tpm2.TPMSAttest{Magic: magic, Type: tpm2.TPMSTAttestQuote, ExtraData: tpm2.TPM2BData{Buffer: nonce},
			Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
				PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{1, 0, 0}}}},
				PCRDigest: tpm2.TPM2BDigest{Buffer: pcrSum[:]},
			})})
		sum := sha256.Sum256(att)
		r, s, err := ecdsa.Sign(crand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
			&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})})
		return att, sig
	}
	vals := digest.PCRs{digest.SHA256: {0: pcr}}
	att, sig := sign(tpm2.TPMGeneratedValue)
	if _, err := Verify(ak, att, sig, nonce, vals); err != nil {
		t.Fatalf("TPM-generated quote: %v", err)
	}
	att, sig = sign(0x30303030)
	if _, err := Verify(ak, att, sig, nonce, vals); !errors.Is(err, ErrMalformed) {
		t.Fatalf("structure without TPM_GENERATED_VALUE: %v", err)
	}
}
