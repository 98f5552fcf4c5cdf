// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/intactsec/intact/digest"
)

func seedRecords(t testing.TB) [][]byte {
	bin := keylimeBinary(t)
	l, err := ParseBinary(bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, r := range l.UnverifiedRecords()[:4] {
		seeds = append(seeds, r.AppendBinary(nil))
	}
	r, _ := NewRecord(13, TemplateIMASig, FileMeasurement{Algo: digest.SHA256, Digest: make([]byte, 32), Path: "/x", Sig: []byte{3, 2}}, digest.SHA1)
	seeds = append(seeds, r.AppendBinary(nil))
	ima := Record{PCR: 10, Digest: make([]byte, 20), Template: TemplateIMA, Data: append(make([]byte, 20), 2, 0, 0, 0, '/', 'a')}
	seeds = append(seeds, ima.AppendBinary(nil))
	// A patched kernel's layout (ima-dep-cgn): a u32 digest length before
	// each template digest.
	le := binary.LittleEndian
	dep := le.AppendUint32(nil, 10)
	dep = le.AppendUint32(dep, 20)
	dep = append(dep, make([]byte, 20)...)
	dep = le.AppendUint32(dep, 11)
	dep = append(dep, "ima-dep-cgn"...)
	dep = le.AppendUint32(dep, 8)
	dep = le.AppendUint32(dep, 4)
	dep = append(dep, "/bin"...)
	seeds = append(seeds, dep)
	return seeds
}

// FuzzParseBinary: never panic; whatever parses round-trips byte for byte
// and can be rendered and replayed without panicking.
func FuzzParseBinary(f *testing.F) {
	for _, s := range seedRecords(f) {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, bigEndian bool) {
		partial(b) // the Measurer's test for a record cut short
		l, err := ParseBinary(b, Options{BigEndian: bigEndian})
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		back, _ := l.MarshalBinary()
		if !bytes.Equal(back, b) {
			t.Fatalf("round trip differs")
		}
		if ascii, err := l.MarshalASCII(); err == nil {
			if _, err := ParseASCII(ascii, Options{BigEndian: bigEndian}); err != nil && !KnownTemplate(l.records[0].Template) {
				return
			}
		}
		l.Compute(digest.SHA1, digest.SHA256)
		l.CheckTemplateDigests()
		for _, r := range l.UnverifiedRecords() {
			r.Fields()
			r.FileDigest()
			r.Name()
		}
	})
}

// FuzzParseASCII: never panic; what parses renders to text that parses
// back to the same binary list.
func FuzzParseASCII(f *testing.F) {
	for _, a := range []string{"sha1", "sha512", "sm3_256", "unknown"} {
		for _, l := range bytes.SplitAfter(readTestdata(f, "keylime/ima-log-"+a), []byte("\n")) {
			if len(l) > 0 {
				f.Add(l)
			}
		}
	}
	f.Add(readTestdata(f, "keylime/ima-log-sha256"))
	f.Add([]byte("10 0000000000000000000000000000000000000000 ima 0000000000000000000000000000000000000000 /x\n"))
	f.Add([]byte("10 0000000000000000000000000000000000000000 evm-sig sha256:00 /x  security.ima 0100 00 0 0 33188\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseASCII(b, Options{})
		if err != nil {
			return
		}
		bin, _ := l.MarshalBinary()
		out, err := l.MarshalASCII()
		if err != nil {
			return // fields a kernel cannot print (a d-ng field without its NUL)
		}
		l2, err := ParseASCII(out, Options{Bank: l.Bank()})
		if err != nil {
			t.Fatalf("rendered list does not parse: %v\n%s", err, out)
		}
		bin2, _ := l2.MarshalBinary()
		if !bytes.Equal(bin, bin2) {
			t.Fatalf("ASCII round trip changed the list:\n%s", out)
		}
	})
}

// TestMangledBinary: every truncation and every one-byte change of a real
// list either parses or fails with a ParseError, never a panic; every
// proper truncation inside a record fails.
func TestMangledBinary(t *testing.T) {
	bin := keylimeBinary(t)
	head := bin[:min(600, len(bin))]
	l, err := ParseBinary(head[:0], Options{})
	if err != nil || l.Len() != 0 {
		t.Fatalf("empty list: %v", err)
	}
	full, _ := ParseBinary(bin, Options{})
	ends := map[int]bool{}
	off := 0
	for _, r := range full.UnverifiedRecords() {
		off += len(r.AppendBinary(nil))
		ends[off] = true
	}
	for i := 1; i < len(head); i++ {
		_, err := ParseBinary(head[:i], Options{})
		if ends[i] != (err == nil) {
			t.Errorf("truncated at %d: err %v (record boundary: %v)", i, err, ends[i])
		}
	}
	for i := range head {
		m := bytes.Clone(head)
		m[i] ^= 0x80
		if _, err := ParseBinary(m, Options{}); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("byte %d changed: error %T %v is not a ParseError", i, err, err)
			}
		}
	}
}

func TestReplayErrors(t *testing.T) {
	l, _ := ParseBinary(keylimeBinary(t), Options{})
	for name, pcrs := range map[string]digest.PCRs{
		"empty":       {},
		"bad size":    {digest.SHA1: {10: make([]byte, 19)}},
		"bad index":   {digest.SHA1: {24: make([]byte, 20)}},
		"unsupported": {digest.SM3: {10: make([]byte, 32)}},
	} {
		if _, err := l.Replay(pcrs); err == nil {
			t.Errorf("%s: Replay succeeded", name)
		}
	}
	// A PCR with no records and a non-zero value: From is -1.
	_, err := l.Replay(digest.PCRs{digest.SHA1: {11: bytes.Repeat([]byte{1}, 20)}})
	var me *MismatchError
	if !errors.As(err, &me) || me.From != -1 {
		t.Errorf("Replay of pcr 11: %v, want a MismatchError with From -1", err)
	}
	// A zero PCR with no records matches the empty prefix: nothing verified.
	v, err := l.Replay(digest.PCRs{digest.SHA1: {11: make([]byte, 20)}})
	if err != nil || v.Prefix != 0 || len(v.Records) != 0 {
		t.Errorf("Replay of zero pcr 11: %v, %+v", err, v)
	}
}

func TestViolationExtendsFF(t *testing.T) {
	r, _ := NewRecord(10, TemplateIMANG, FileMeasurement{Algo: digest.SHA256, Digest: make([]byte, 32), Path: "/violated"}, digest.SHA1)
	r.Digest = make([]byte, 20)
	l := NewList(Options{})
	l.Add(r)
	vals, err := l.Compute(digest.SHA1, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, bank := range []digest.Algo{digest.SHA1, digest.SHA256} {
		h, _ := bankHash(bank)
		h.Write(make([]byte, bank.Size()))
		h.Write(ff(bank.Size()))
		if want := h.Sum(nil); !bytes.Equal(vals[bank][10], want) {
			t.Errorf("%s: violation replays to %x, want H(0 || ff..ff) %x", bank, vals[bank][10], want)
		}
	}
}

func TestBootAggregate(t *testing.T) {
	pcrs := map[int][]byte{}
	for i := range 10 {
		pcrs[i] = bytes.Repeat([]byte{byte(i)}, 32)
	}
	// sha256 covers PCRs 0-9: changing PCR 9 changes it.
	a, err := BootAggregate(digest.SHA256, pcrs)
	if err != nil {
		t.Fatal(err)
	}
	pcrs[9] = make([]byte, 32)
	b, _ := BootAggregate(digest.SHA256, pcrs)
	if bytes.Equal(a, b) {
		t.Error("sha256 boot_aggregate does not cover pcr 9")
	}
	// sha1 covers PCRs 0-7 only.
	p1 := map[int][]byte{}
	for i := range 10 {
		p1[i] = bytes.Repeat([]byte{byte(i)}, 20)
	}
	c, _ := BootAggregate(digest.SHA1, p1)
	p1[8] = make([]byte, 20)
	d, _ := BootAggregate(digest.SHA1, p1)
	if !bytes.Equal(c, d) {
		t.Error("sha1 boot_aggregate covers pcr 8")
	}
	delete(p1, 7)
	if _, err := BootAggregate(digest.SHA1, p1); err == nil {
		t.Error("boot_aggregate without pcr 7 succeeded")
	}
}
