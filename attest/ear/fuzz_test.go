// SPDX-License-Identifier: Apache-2.0

package ear_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/intactsec/intact/attest/ear"
)

// A fixed key: the fuzzer's tokens verify only if it finds a signature,
// so the decoder is fuzzed through ParseUnverified too.
func fuzzKey() *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), new(big.Int).SetInt64(0x1234567890).FillBytes(make([]byte, 32)))
	if err != nil {
		panic(err)
	}
	return k
}

func FuzzVerify(f *testing.F) {
	k := fuzzKey()
	tok, err := ear.Sign(sample(), k, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add(strings.Replace(tok, ".", "..", 1))
	f.Add("e30.e30.")
	f.Add(`eyJhbGciOiJFUzI1NiJ9.eyJlYXRfcHJvZmlsZSI6InRhZzpnaXRodWIuY29tLDIwMjM6dmVyYWlzb24vZWFyIiwiaWF0IjoxLCJlYXIudmVyaWZpZXItaWQiOnsiZGV2ZWxvcGVyIjoieCIsImJ1aWxkIjoieSJ9LCJzdWJtb2RzIjp7ImEiOnsiZWFyLnN0YXR1cyI6Im5vbmUifX19.`)
	f.Fuzz(func(t *testing.T, tok string) {
		r, err := ear.Verify(tok, &k.PublicKey)
		if err == nil && r.Validate() != nil {
			t.Fatal("verified invalid claims")
		}
		if err != nil && !errors.Is(err, ear.ErrMalformed) && !errors.Is(err, ear.ErrAlgorithm) &&
			!errors.Is(err, ear.ErrSignature) && !errors.Is(err, ear.ErrClaims) {
			t.Fatalf("untyped error %v", err)
		}
		u, err := ear.ParseUnverified(tok)
		if err != nil {
			return
		}
		// Whatever decodes re-signs and verifies to the same claims.
		again, err := ear.Sign(u, k, nil)
		if err != nil {
			t.Fatalf("Sign of decoded claims: %v", err)
		}
		v, err := ear.Verify(again, &k.PublicKey)
		if err != nil || !reflect.DeepEqual(u, v) {
			t.Fatalf("round trip: %+v != %+v (%v)", v, u, err)
		}
	})
}
