// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/tpm"
)

var evmKey = bytes.Repeat([]byte{0x5a}, 32)

func seal(t *testing.T, tp *tpm.TPM, opts tpm.SealOptions) *tpm.SealedKey {
	t.Helper()
	k, err := tp.Seal(evmKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Every key goes through its byte form, as it would through a file.
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var k2 tpm.SealedKey
	if err := k2.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &k2
}

func wantUnseal(t *testing.T, tp *tpm.TPM, k *tpm.SealedKey, pass []byte) {
	t.Helper()
	got, err := tp.Unseal(k, pass)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, evmKey) {
		t.Fatalf("unsealed %x, want %x", got, evmKey)
	}
}

// wantMismatch checks that unsealing fails naming exactly pcrs.
func wantMismatch(t *testing.T, tp *tpm.TPM, k *tpm.SealedKey, pass []byte, pcrs ...int) {
	t.Helper()
	_, err := tp.Unseal(k, pass)
	var pe *tpm.PCRMismatchError
	if !errors.As(err, &pe) || !errors.Is(err, tpm.ErrPolicy) {
		t.Fatalf("unseal after pcr change: err = %v, want PCRMismatchError", err)
	}
	if !slices.Equal(pe.PCRs, pcrs) {
		t.Fatalf("mismatch names pcrs %v, want %v", pe.PCRs, pcrs)
	}
	for _, p := range pcrs {
		if !strings.Contains(err.Error(), fmt.Sprint(p)) {
			t.Errorf("message %q does not name pcr %d", err, p)
		}
	}
}

func TestSealUnseal(t *testing.T) {
	backends(t, func(t *testing.T, open func() *tpm.TPM) {
		tp := open()
		pcrs := []int{0, 2, 4, 7, 16}
		k := seal(t, tp, tpm.SealOptions{PCRs: pcrs})
		wantUnseal(t, tp, k, nil)
		wantUnseal(t, tp, k, nil) // unsealing changes nothing

		if err := tp.ExtendPCRData(16, []byte("new kernel")); err != nil {
			t.Fatal(err)
		}
		wantMismatch(t, tp, k, nil, 16)

		// Sealed to the new state it unseals again.
		k2 := seal(t, tp, tpm.SealOptions{PCRs: pcrs})
		wantUnseal(t, tp, k2, nil)
	})
}

func TestSealPassphrase(t *testing.T) {
	backends(t, func(t *testing.T, open func() *tpm.TPM) {
		tp := open()
		pass := []byte("correct horse")
		k := seal(t, tp, tpm.SealOptions{PCRs: []int{7, 16}, Passphrase: pass})
		if !k.Passphrase {
			t.Fatal("passphrase flag lost")
		}
		wantUnseal(t, tp, k, pass)
		for _, wrong := range [][]byte{nil, []byte("wrong horse")} {
			if _, err := tp.Unseal(k, wrong); !errors.Is(err, tpm.ErrWrongPassphrase) {
				t.Errorf("unseal with %q: err = %v, want ErrWrongPassphrase", wrong, err)
			}
		}
		wantUnseal(t, tp, k, pass)
		// PCRs still count with a passphrase.
		if err := tp.ExtendPCRData(7, []byte("secure boot off")); err != nil {
			t.Fatal(err)
		}
		wantMismatch(t, tp, k, pass, 7)
	})
}

// predict returns the sha256 value of pcr after extending it with the
// sha256 of data.
func predict(t *testing.T, tp *tpm.TPM, pcr int, data []byte) []byte {
	t.Helper()
	cur, err := tp.ReadPCRs(crypto.SHA256, []int{pcr})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(data)
	v := sha256.Sum256(append(cur[pcr], d[:]...))
	return v[:]
}

func TestReseal(t *testing.T) {
	tp := openSim(t)
	pass := []byte("old")
	k := seal(t, tp, tpm.SealOptions{PCRs: []int{4, 16}, Passphrase: pass})

	// A planned update: PCR 16 will hold next after the extend.
	update := []byte("kernel 6.99")
	next := predict(t, tp, 16, update)
	cur, _ := tp.ReadPCRs(crypto.SHA256, []int{4})
	if _, err := tp.Reseal(k, []byte("bad"), tpm.SealOptions{}); !errors.Is(err, tpm.ErrWrongPassphrase) {
		t.Fatalf("reseal with a wrong passphrase: err = %v", err)
	}
	k2, err := tp.Reseal(k, pass, tpm.SealOptions{Values: map[int][]byte{4: cur[4], 16: next}, Passphrase: []byte("new")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k2.PCRs, []int{4, 16}) {
		t.Fatalf("resealed pcrs %v", k2.PCRs)
	}
	wantMismatch(t, tp, k2, []byte("new"), 16) // not yet updated
	if err := tp.ExtendPCRData(16, update); err != nil {
		t.Fatal(err)
	}
	wantUnseal(t, tp, k2, []byte("new"))
	wantMismatch(t, tp, k, pass, 16) // the old key no longer opens

	// Reseal to current values of another selection.
	k3, err := tp.Reseal(k2, []byte("new"), tpm.SealOptions{PCRs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	wantUnseal(t, tp, k3, nil)
}

func TestSealBadInput(t *testing.T) {
	tp := openSim(t)
	for name, opts := range map[string]tpm.SealOptions{
		"no pcrs":        {},
		"pcr 24":         {PCRs: []int{24}},
		"duplicate":      {PCRs: []int{7, 7}},
		"missing value":  {PCRs: []int{7, 8}, Values: map[int][]byte{7: make([]byte, 32), 9: make([]byte, 32)}},
		"short value":    {PCRs: []int{7}, Values: map[int][]byte{7: make([]byte, 20)}},
		"too few values": {PCRs: []int{7, 8}, Values: map[int][]byte{7: make([]byte, 32)}},
	} {
		if _, err := tp.Seal(evmKey, opts); !errors.Is(err, tpm.ErrBadPCRs) {
			t.Errorf("%s: err = %v, want ErrBadPCRs", name, err)
		}
	}
	for _, n := range []int{0, tpm.MaxSecretSize + 1} {
		if _, err := tp.Seal(make([]byte, n), tpm.SealOptions{PCRs: []int{7}}); err == nil {
			t.Errorf("sealed a %d-byte secret", n)
		}
	}
}

// TestUnsealCorrupted: a damaged blob, or one from another TPM, is refused
// as not loadable.
func TestUnsealCorrupted(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{})
	other := openSpec(t, sw.Spec())
	foreign := seal(t, other, tpm.SealOptions{PCRs: []int{7}})
	other.Close()

	tp := openSim(t)
	k := seal(t, tp, tpm.SealOptions{PCRs: []int{7}})
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x40; return b }
	cases := map[string]*tpm.SealedKey{
		"other tpm":    foreign,
		"private bit":  {PCRs: k.PCRs, Values: k.Values, Public: k.Public, Private: flip(k.Private, len(k.Private)-3)},
		"public bit":   {PCRs: k.PCRs, Values: k.Values, Public: flip(k.Public, len(k.Public)-3), Private: k.Private},
		"private swap": {PCRs: k.PCRs, Values: k.Values, Public: k.Public, Private: foreign.Private},
	}
	for name, c := range cases {
		if _, err := tp.Unseal(c, nil); !errors.Is(err, tpm.ErrForeignKey) {
			t.Errorf("%s: err = %v, want ErrForeignKey", name, err)
		}
	}
	// The recorded values only explain failures: the TPM checks the PCRs
	// against the policy in the wrapped object, so altering them neither
	// opens nor breaks the key.
	alt := *k
	alt.Values = map[int][]byte{7: make([]byte, 32)}
	wantUnseal(t, tp, &alt, nil)
	// Passphrase flag cleared: the policy no longer matches either.
	kp := seal(t, tp, tpm.SealOptions{PCRs: []int{7}, Passphrase: []byte("p")})
	kp.Passphrase = false
	if _, err := tp.Unseal(kp, nil); !errors.Is(err, tpm.ErrPolicy) {
		t.Errorf("passphrase flag cleared: err = %v, want ErrPolicy", err)
	}
	wantUnseal(t, tp, k, nil)
}

// TestSealInteropPCRExtend proves: after tpm2_pcrextend on a sealed PCR,
// intact refuses to unseal and names the PCR.
func TestSealInteropPCRExtend(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{})
	tp := openSpec(t, sw.Spec())
	k := seal(t, tp, tpm.SealOptions{PCRs: []int{0, 7, 11}})
	wantUnseal(t, tp, k, nil)
	tp.Close()

	sw.Tool(t, "tpm2_pcrextend", "11:sha256="+strings.Repeat("01", 32))

	tp = openSpec(t, sw.Spec())
	defer tp.Close()
	wantMismatch(t, tp, k, nil, 11)
}
