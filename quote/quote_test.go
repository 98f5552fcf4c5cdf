// SPDX-License-Identifier: Apache-2.0

package quote_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

type fixture struct {
	ak, other   *tpm.AK
	nonce       []byte
	q           *tpm.Quote
	pcrs        digest.PCRs
	attestOther *tpm.Quote
}

var fx *fixture

func setup(t testing.TB) *fixture {
	t.Helper()
	if fx != nil {
		return fx
	}
	tp, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	ak, err := tp.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	other, err := tp.CreateAK()
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.ExtendPCRData(13, []byte("event")); err != nil {
		t.Fatal(err)
	}
	nonce := []byte("0123456789abcdef0123456789abcdef")
	sel := tpm.QuoteSelection{digest.SHA256: {0, 1, 13}, digest.SHA1: {13}}
	q, vals, err := tp.ReadQuotedPCRs(ak, nonce, sel)
	if err != nil {
		t.Fatal(err)
	}
	qo, err := tp.Quote(other, nonce, sel)
	if err != nil {
		t.Fatal(err)
	}
	fx = &fixture{ak: ak, other: other, nonce: nonce, q: q, pcrs: vals, attestOther: qo}
	return fx
}

func parseAK(t testing.TB, ak *tpm.AK) *quote.AK {
	t.Helper()
	a, err := quote.ParseAK(ak.Public)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Name(), ak.Name) {
		t.Fatalf("name %x, tpm says %x", a.Name(), ak.Name)
	}
	return a
}

func TestVerify(t *testing.T) {
	f := setup(t)
	ak := parseAK(t, f.ak)
	v, err := quote.Verify(ak, f.q.Attest, f.q.Signature, f.nonce, f.pcrs)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(v.PCRs[digest.SHA256]) != 3 {
		t.Errorf("verified = %+v", v)
	}
}

func TestVerifyRejects(t *testing.T) {
	f := setup(t)
	ak := parseAK(t, f.ak)
	otherAK := parseAK(t, f.other)
	changed := func(bank digest.Algo, pcr int) digest.PCRs {
		p := digest.PCRs{}
		for b, vals := range f.pcrs {
			p[b] = map[int][]byte{}
			for i, v := range vals {
				p[b][i] = bytes.Clone(v)
			}
		}
		p[bank][pcr][0] ^= 1
		return p
	}
	dropped := changed(digest.SHA256, 0)
	delete(dropped[digest.SHA256], 0)
	extra := changed(digest.SHA256, 0)
	extra[digest.SHA256][0][0] ^= 1
	extra[digest.SHA256][5] = make([]byte, 32)
	for _, tc := range []struct {
		name   string
		ak     *quote.AK
		attest []byte
		sig    []byte
		nonce  []byte
		pcrs   digest.PCRs
		want   error
	}{
		{"stale nonce", ak, f.q.Attest, f.q.Signature, []byte("another nonce"), f.pcrs, quote.ErrNonce},
		{"other ak signed", ak, f.attestOther.Attest, f.attestOther.Signature, f.nonce, f.pcrs, quote.ErrSignature},
		{"checked with other ak", otherAK, f.q.Attest, f.q.Signature, f.nonce, f.pcrs, quote.ErrSignature},
		{"pcr value changed", ak, f.q.Attest, f.q.Signature, f.nonce, changed(digest.SHA256, 13), quote.ErrPCRDigest},
		{"sha1 pcr changed", ak, f.q.Attest, f.q.Signature, f.nonce, changed(digest.SHA1, 13), quote.ErrPCRDigest},
		{"pcr missing", ak, f.q.Attest, f.q.Signature, f.nonce, dropped, quote.ErrSelection},
		{"pcr extra", ak, f.q.Attest, f.q.Signature, f.nonce, extra, quote.ErrSelection},
		{"signature truncated", ak, f.q.Attest, f.q.Signature[:len(f.q.Signature)-1], f.nonce, f.pcrs, quote.ErrMalformed},
		{"attest extended", ak, append(bytes.Clone(f.q.Attest), 0), f.q.Signature, f.nonce, f.pcrs, quote.ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := quote.Verify(tc.ak, tc.attest, tc.sig, tc.nonce, tc.pcrs)
			if v != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, %v; want %v", v, err, tc.want)
			}
			var qe *quote.Error
			if !errors.As(err, &qe) {
				t.Fatalf("error %T is not *quote.Error", err)
			}
		})
	}
}

// Every one-byte change of the attestation or signature is rejected.
func TestVerifyMangled(t *testing.T) {
	f := setup(t)
	ak := parseAK(t, f.ak)
	for i := range f.q.Attest {
		b := bytes.Clone(f.q.Attest)
		b[i] ^= 0x40
		if _, err := quote.Verify(ak, b, f.q.Signature, f.nonce, f.pcrs); err == nil {
			t.Fatalf("attest byte %d changed: accepted", i)
		}
	}
	for i := range f.q.Signature {
		b := bytes.Clone(f.q.Signature)
		b[i] ^= 0x40
		if _, err := quote.Verify(ak, f.q.Attest, b, f.nonce, f.pcrs); err == nil {
			t.Fatalf("signature byte %d changed: accepted", i)
		}
	}
}

func TestParseAKRejectsUnrestricted(t *testing.T) {
	tp, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	kb, err := tp.CreateKey(tpm.KeyECP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quote.ParseAK(kb.Public); !errors.Is(err, quote.ErrAK) {
		t.Fatalf("ParseAK(unrestricted key) = %v, want ErrAK", err)
	}
	ek, err := tp.EndorsementKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quote.ParseAK(ek.Public); !errors.Is(err, quote.ErrAK) {
		t.Fatalf("ParseAK(ek) = %v, want ErrAK", err)
	}
}

func TestCheckClock(t *testing.T) {
	base := quote.Clock{Clock: 1000, ResetCount: 2, RestartCount: 1, Safe: true}
	wrapped := quote.Clock{Clock: 1000, ResetCount: 0xffffffff, RestartCount: 0xfffffff0}
	if c, err := quote.CheckClock(wrapped, quote.Clock{Clock: 9, ResetCount: 0, RestartCount: 7}); err != nil || c != quote.Reset {
		t.Errorf("reset count wrapping around: %v, %v", c, err)
	}
	for _, tc := range []struct {
		cur  quote.Clock
		want quote.ClockChange
		err  bool
	}{
		{quote.Clock{Clock: 2000, ResetCount: 2, RestartCount: 1}, quote.SameBoot, false},
		{quote.Clock{Clock: 1000, ResetCount: 2, RestartCount: 1}, quote.SameBoot, false},
		{quote.Clock{Clock: 999, ResetCount: 2, RestartCount: 1}, 0, true},
		{quote.Clock{Clock: 5, ResetCount: 3, RestartCount: 0}, quote.Reset, false},
		{quote.Clock{Clock: 5000, ResetCount: 1, RestartCount: 1}, 0, true},
		{quote.Clock{Clock: 5000, ResetCount: 2, RestartCount: 0}, 0, true},
		{quote.Clock{Clock: 5000, ResetCount: 2, RestartCount: 2}, quote.Restarted, false},
		{quote.Clock{Clock: 5000, ResetCount: 2 + 1<<31, RestartCount: 1}, 0, true},
	} {
		got, err := quote.CheckClock(base, tc.cur)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("CheckClock(%+v) = %v, %v", tc.cur, got, err)
		}
		if err != nil && !errors.Is(err, quote.ErrClock) {
			t.Errorf("error %v not ErrClock", err)
		}
	}
}

// FuzzVerify verifies arbitrary attestation and signature bytes with a
// genuine AK: nothing panics, and only the genuine quote verifies.
func FuzzVerify(f *testing.F) {
	fx := setup(f)
	ak := parseAK(f, fx.ak)
	f.Add(fx.q.Attest, fx.q.Signature, fx.nonce)
	f.Add(fx.attestOther.Attest, fx.attestOther.Signature, fx.nonce)
	f.Fuzz(func(t *testing.T, attest, sig, nonce []byte) {
		v, err := quote.Verify(ak, attest, sig, nonce, fx.pcrs)
		if err == nil && (!bytes.Equal(attest, fx.q.Attest) || !bytes.Equal(nonce, fx.nonce) || v == nil) {
			t.Fatalf("verified a quote that is not the genuine one")
		}
	})
}

func FuzzParseAK(f *testing.F) {
	f.Add([]byte{0, 0x23, 0, 0x0b})
	f.Fuzz(func(t *testing.T, b []byte) {
		quote.ParseAK(b)
	})
}
