// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"bytes"
	"crypto"
	_ "crypto/sha1"
	"crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestAlgoNames(t *testing.T) {
	for a := Algo(0); a < algoLast; a++ {
		got, err := ParseAlgo(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAlgo(%q) = %v, %v", a, got, err)
		}
	}
	if _, err := ParseAlgo("sha257"); err == nil {
		t.Error("ParseAlgo(sha257) succeeded")
	}
	if Algo(23).Known() || Algo(23).Size() != 0 {
		t.Error("id 23 reported known")
	}
}

// TestAlgoWireValues pins the kernel's HASH_ALGO numbering: it is the
// algorithm byte of security.ima and may never change.
func TestAlgoWireValues(t *testing.T) {
	for a, want := range map[Algo]uint8{MD5: 1, SHA1: 2, SHA256: 4, SHA512: 6, SM3: 17, SHA3_256: 20} {
		if uint8(a) != want {
			t.Errorf("%s = %d, the kernel's is %d", a, uint8(a), want)
		}
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		a, ok := AlgoFor(h)
		if c, ok2 := a.CryptoHash(); !ok || !ok2 || c != h {
			t.Errorf("AlgoFor(%v) = %v, %v; back: %v", h, a, ok, c)
		}
	}
	if _, ok := SM3.CryptoHash(); ok {
		t.Error("sm3 reported computable")
	}
}

func TestFile(t *testing.T) {
	data := strings.Repeat("intact", 100000) // more than one read buffer
	got, err := File(iotest.OneByteReader(strings.NewReader(data[:1000])), SHA256)
	want := sha256.Sum256([]byte(data[:1000]))
	if err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("File(one-byte reader) = %x, %v; want %x", got, err, want)
	}
	got, err = File(strings.NewReader(data), SHA256)
	want = sha256.Sum256([]byte(data))
	if err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("File = %x, %v; want %x", got, err, want)
	}
	if _, err := File(strings.NewReader(data), SM3); !errors.Is(err, ErrUnsupported) {
		t.Errorf("File(sm3) = %v, want ErrUnsupported", err)
	}
	boom := errors.New("boom")
	if _, err := File(iotest.ErrReader(boom), SHA256); !errors.Is(err, boom) {
		t.Errorf("File(failing reader) = %v", err)
	}
}

func TestPCRs(t *testing.T) {
	p := PCRs{SHA256: {10: {1, 2}}, SHA1: {0: {3}}}
	if b := p.Banks(); len(b) != 2 || b[0] != SHA1 || b[1] != SHA256 {
		t.Errorf("Banks = %v", b)
	}
	c := p.Clone()
	c[SHA256][10][0] = 9
	if p[SHA256][10][0] != 1 {
		t.Error("Clone shares the values")
	}
}
