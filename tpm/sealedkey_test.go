// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/intactsec/intact/tpm"
)

// validSealed is a structurally valid sealed-key blob (the public and
// private parts are opaque to the parser).
func validSealed(t testing.TB) []byte {
	k := &tpm.SealedKey{
		PCRs:       []int{0, 7},
		Values:     map[int][]byte{0: bytes.Repeat([]byte{1}, 32), 7: bytes.Repeat([]byte{7}, 32)},
		Passphrase: true,
		Public:     []byte("public-part"),
		Private:    []byte("private-part"),
	}
	b, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealedKeyRoundTrip(t *testing.T) {
	b := validSealed(t)
	var k tpm.SealedKey
	if err := k.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !k.Passphrase || len(k.PCRs) != 2 || k.PCRs[1] != 7 || k.Values[7][0] != 7 || string(k.Private) != "private-part" {
		t.Fatalf("decoded %+v", k)
	}
	b2, err := k.MarshalBinary()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("re-encoding differs: %v", err)
	}
}

// TestSealedKeyMangled: every truncation, any trailing byte, and each
// structural field set to a bad value is rejected with ErrMalformed.
func TestSealedKeyMangled(t *testing.T) {
	b := validSealed(t)
	reject := func(name string, m []byte) {
		t.Helper()
		var k tpm.SealedKey
		if err := k.UnmarshalBinary(m); !errors.Is(err, tpm.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	for i := 0; i < len(b); i++ {
		reject("truncated", b[:i])
	}
	reject("trailing byte", append(bytes.Clone(b), 0))
	set := func(i int, v byte) []byte { m := bytes.Clone(b); m[i] = v; return m }
	// Offsets: magic 0-3, version 4, parent 5, flags 6, bank 7-8,
	// count 9, then index|value pairs of 33 bytes.
	reject("magic", set(0, 'X'))
	reject("version 0", set(4, 0))
	reject("version 2", set(4, 2))
	reject("parent", set(5, 2))
	reject("flags", set(6, 3))
	reject("bank sha1", set(8, 0x04))
	reject("count 0", set(9, 0))
	reject("count 25", set(9, 25))
	reject("count 3", set(9, 3))
	reject("index 24", set(10+33, 24))
	reject("indexes not ascending", set(10+33, 0))
	reject("public size 0", set(10+66+1, 0))
	reject("public size large", set(10+66, 0xff))
}

func TestSealedKeyMarshalRejectsInvalid(t *testing.T) {
	for name, k := range map[string]*tpm.SealedKey{
		"no pcrs":      {Public: []byte("x"), Private: []byte("x")},
		"value short":  {PCRs: []int{1}, Values: map[int][]byte{1: {1}}, Public: []byte("x"), Private: []byte("x")},
		"unsorted":     {PCRs: []int{2, 1}, Values: map[int][]byte{1: make([]byte, 32), 2: make([]byte, 32)}, Public: []byte("x"), Private: []byte("x")},
		"no private":   {PCRs: []int{1}, Values: map[int][]byte{1: make([]byte, 32)}, Public: []byte("x")},
		"huge private": {PCRs: []int{1}, Values: map[int][]byte{1: make([]byte, 32)}, Public: []byte("x"), Private: make([]byte, 70000)},
	} {
		if _, err := k.MarshalBinary(); !errors.Is(err, tpm.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzSealedKey(f *testing.F) {
	f.Add(validSealed(f))
	f.Add([]byte("ITSK\x01\x01\x00\x00\x0b\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k tpm.SealedKey
		if err := k.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, tpm.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Whatever parses re-encodes to the same bytes: one encoding.
		b, err := k.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed but does not re-encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs")
		}
	})
}
