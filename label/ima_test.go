// SPDX-License-Identifier: Apache-2.0

package label

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/intactsec/intact/digest"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Labels in the shapes evmctl writes (../shared/spec/ima-evm-formats.md §2);
// the digests are evmctl's, the signature bytes are placeholders (real
// evmctl signatures are checked in the interop tests).
var evmctlLabels = map[string]string{
	"sha1 ima_hash":   "0122596363b3de40b06f981fb85d82312e8c0ed511",
	"md5 ima_hash":    "016f5902ac237024bdd0c176cb93063dc4",
	"sha256 ima_hash": "0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447",
	"ec p256 signature shape": "03020437a91c5b0048" +
		"3046022100" + strings.Repeat("af", 32) + "022100" + strings.Repeat("bc", 32),
}

func TestParseEvmctlLabels(t *testing.T) {
	for name, h := range evmctlLabels {
		b := mustHex(t, h)
		l, err := ParseIMA(b)
		if err != nil {
			t.Errorf("%s: ParseIMA: %v", name, err)
			continue
		}
		if got := l.Marshal(); !bytes.Equal(got, b) {
			t.Errorf("%s: Marshal = %x, want %x", name, got, b)
		}
	}
	l, err := ParseIMA(mustHex(t, evmctlLabels["md5 ima_hash"]))
	if err != nil {
		t.Fatal(err)
	}
	if l.Algo != digest.MD5 || len(l.Digest) != 16 {
		t.Errorf("md5 label parsed as %v/%d bytes", l.Algo, len(l.Digest))
	}
	if l, err = ParseIMA(mustHex(t, evmctlLabels["ec p256 signature shape"])); err != nil {
		t.Fatal(err)
	}
	if l.Sig.KeyID != 0x37a91c5b || l.Algo != digest.SHA256 || len(l.Sig.Sig) != 0x48 {
		t.Errorf("signature header parsed as %+v", l.Sig)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"unknown type", "07aa", ErrUnsupported},
		{"evm hmac type", "02" + "00112233445566778899aabbccddeeff00112233", ErrMalformed},
		{"digest-ng unknown algo", "04" + "17" + "00", ErrUnsupported},
		{"digest-ng short", "0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a4", ErrMalformed},
		{"digest-ng long", "0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44700", ErrMalformed},
		{"sig size too big", "030204deadbeef0003aabb", ErrMalformed},
		{"sig size too small", "030204deadbeef0001aabb", ErrMalformed},
		{"sig empty", "030204deadbeef0000", ErrMalformed},
		{"sig unknown algo", "030220deadbeef0001aa", ErrUnsupported},
		{"sig version 9", "030904deadbeef0001aa", ErrUnsupported},
		{"verity v2", "060204deadbeef0001aa", ErrMalformed},
		{"legacy 18 bytes", "01" + "0011223344556677889900112233445566", ErrMalformed},
	} {
		_, err := ParseIMA(mustHex(t, tc.hex))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: ParseIMA error = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSignatureV1(t *testing.T) {
	// 03 01 <ts 4> 00 01 <keyid 8> 01 <bits 0x0010> <2 bytes>
	b := mustHex(t, "0301b5ff096b000128f25253a896e4f1010010abcd")
	l, err := ParseIMA(b)
	if err != nil {
		t.Fatal(err)
	}
	if l.SigV1 == nil || l.Algo != digest.SHA256 || !bytes.Equal(l.SigV1.MPI, []byte{0xab, 0xcd}) {
		t.Fatalf("v1 parsed as %+v", l.SigV1)
	}
	if !bytes.Equal(l.Marshal(), b) {
		t.Errorf("v1 Marshal changed the bytes")
	}
}

// TestMangling: every truncation and every one-byte change of a valid label
// is rejected or parses to a label that marshals back to the same bytes.
func TestMangling(t *testing.T) {
	for name, h := range allLabels(t) {
		valid := mustHex(t, h)
		check := func(b []byte) {
			l, err := ParseIMA(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("%s: %x: untyped error %v", name, b, err)
				}
				return
			}
			if got := l.Marshal(); !bytes.Equal(got, b) {
				t.Fatalf("%s: %x parsed, but marshals to %x", name, b, got)
			}
		}
		for n := 0; n < len(valid); n++ {
			check(valid[:n])
			if _, err := ParseIMA(valid[:n]); err == nil && n > 0 && valid[0] != byte(TypeDigest) {
				t.Errorf("%s: truncation to %d bytes accepted", name, n)
			}
		}
		for i := range valid {
			for v := 0; v < 256; v++ {
				b := bytes.Clone(valid)
				b[i] = byte(v)
				check(b)
			}
		}
	}
}

func FuzzParseIMA(f *testing.F) {
	for _, h := range allLabels(f) {
		f.Add(mustHex(f, h))
	}
	f.Add(mustHex(f, "0301b5ff096b000128f25253a896e4f1010010abcd"))
	f.Add(mustHex(f, "060304deadbeef0001aa"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseIMA(b)
		if err != nil {
			return
		}
		again, err := ParseIMA(l.Marshal())
		if err != nil {
			t.Fatalf("re-parse of marshalled %x: %v", b, err)
		}
		if !bytes.Equal(again.Marshal(), l.Marshal()) {
			t.Fatalf("unstable round trip for %x", b)
		}
	})
}

// realLabels reads testdata/evmctl-labels.txt: labels evmctl wrote.
func realLabels(t testing.TB) map[string]string {
	t.Helper()
	data, err := os.ReadFile("testdata/evmctl-labels.txt")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			m[f[0]] = f[1]
		}
	}
	return m
}

func allLabels(t testing.TB) map[string]string {
	m := realLabels(t)
	for k, v := range evmctlLabels {
		m[k] = v
	}
	return m
}

func TestRealLabels(t *testing.T) {
	real := realLabels(t)
	if len(real) < 11 {
		t.Fatalf("testdata has %d labels", len(real))
	}
	for name, h := range real {
		b := mustHex(t, h)
		l, err := ParseIMA(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(l.Marshal(), b) {
			t.Errorf("%s: round trip changed the bytes", name)
		}
		want := "sha256"
		if strings.HasSuffix(name, "sha384") {
			want = "sha384"
		} else if strings.HasSuffix(name, "sha1") {
			want = "sha1"
		} else if strings.HasSuffix(name, "sha512") {
			want = "sha512"
		}
		if l.Algo.String() != want && !strings.Contains(name, "v1") {
			t.Errorf("%s: algorithm %s, want %s", name, l.Algo, want)
		}
	}
}
