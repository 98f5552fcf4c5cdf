// SPDX-License-Identifier: Apache-2.0

//go:build shareddata

package mlog

// The extra run (go test -tags shareddata): tests over the Raspberry Pi
// lists in ../shared/testdata, a GPL-2.0 project's data that stays out of
// this repository (testdata/README.md).

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
)

func sharedTestdata(t testing.TB, rel string) string { return testenv.Shared(t, rel) }

func readShared(t testing.TB, rel string) []byte { return testenv.ReadShared(t, rel) }

const rpiPCR10 = "f38695bbd9479953543813fb13bb88235440504e" // testdata README

func TestSharedRPIBinaryToASCII(t *testing.T) {
	bin := readShared(t, "ima-logs/rpi-ima-ng.bin")
	ascii := readShared(t, "ima-logs/rpi-ima-ng.ascii")
	l, err := ParseBinary(bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 922 {
		t.Errorf("Len() = %d, want 922", l.Len())
	}
	got, err := l.MarshalASCII()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ascii) {
		t.Errorf("MarshalASCII differs from rpi-ima-ng.ascii at byte %d", firstDiff(got, ascii))
	}
	back, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, bin) {
		t.Errorf("MarshalBinary differs from rpi-ima-ng.bin at byte %d", firstDiff(back, bin))
	}
}

func TestSharedRPIASCIIToBinary(t *testing.T) {
	bin := readShared(t, "ima-logs/rpi-ima-ng.bin")
	ascii := readShared(t, "ima-logs/rpi-ima-ng.ascii")
	l, err := ParseASCII(ascii, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Bank() != digest.SHA1 {
		t.Errorf("Bank() = %v, want sha1", l.Bank())
	}
	back, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, bin) {
		t.Errorf("binary from the ASCII list differs from rpi-ima-ng.bin at byte %d", firstDiff(back, bin))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSharedRPITemplateHashes(t *testing.T) {
	l, err := ParseBinary(readShared(t, "ima-logs/rpi-ima-ng.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckTemplateDigests(); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, r := range l.UnverifiedRecords() {
		if r.Violation() {
			t.Errorf("record %d is a violation; the README says all 922 hashes check", i)
			continue
		}
		if err := r.CheckTemplateDigest(digest.SHA1); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
		checked++
	}
	if checked != 922 {
		t.Errorf("checked %d template hashes, want 922", checked)
	}
	if name, _ := l.UnverifiedRecords()[0].Name(); name != BootAggregateName {
		t.Errorf("first record name %q, want boot_aggregate", name)
	}
}

func TestSharedRPIReplay(t *testing.T) {
	l, err := ParseBinary(readShared(t, "ima-logs/rpi-ima-ng.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	vals, err := l.Compute()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(vals[digest.SHA1][10]); got != rpiPCR10 {
		t.Errorf("replayed sha1 pcr 10 = %s, want %s", got, rpiPCR10)
	}
	want, _ := hex.DecodeString(rpiPCR10)
	v, err := l.Replay(digest.PCRs{digest.SHA1: {10: want}})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Records) != 922 || v.Prefix != 922 {
		t.Errorf("Replay verified %d records, prefix %d; want 922, 922", len(v.Records), v.Prefix)
	}
}

func TestSharedRPIReplayLaggingPCR(t *testing.T) {
	l, err := ParseBinary(readShared(t, "ima-logs/rpi-ima-ng.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The PCR as it was after 500 records: the list has grown since.
	head := &List{bank: l.bank, records: l.records[:500]}
	vals, err := head.Compute(digest.SHA1, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := l.Replay(vals)
	if err != nil {
		t.Fatal(err)
	}
	if v.Prefix != 500 || len(v.Records) != 500 {
		t.Errorf("Replay prefix %d, %d records; want 500, 500", v.Prefix, len(v.Records))
	}
	if v.PrefixByBank[digest.SHA256] != 500 {
		t.Errorf("sha256 prefix %d, want 500", v.PrefixByBank[digest.SHA256])
	}
}

func TestSharedRPIReplayTampered(t *testing.T) {
	bin := bytes.Clone(readShared(t, "ima-logs/rpi-ima-ng.bin"))
	// Rename a file in record 3's data: its template hash no longer checks.
	i := bytes.Index(bin, []byte("/usr/lib/arm-linux-gnueabihf/libc-2.31.so"))
	if i < 0 {
		t.Fatal("test file name not found")
	}
	bin[i+5] = 'X'
	l, err := ParseBinary(bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(rpiPCR10)
	_, err = l.Replay(digest.PCRs{digest.SHA1: {10: want}})
	var th *TemplateHashError
	if !errors.As(err, &th) {
		t.Fatalf("Replay of a tampered list: %v, want a TemplateHashError", err)
	}
	r := l.UnverifiedRecords()[th.Record]
	if name, _ := r.Name(); !strings.Contains(name, "/usr/Xib/") {
		t.Errorf("TemplateHashError names record %d (%s), not the tampered one", th.Record, name)
	}
	// A PCR from another boot matches no prefix.
	other := bytes.Repeat([]byte{1}, 20)
	_, err = l.Replay(digest.PCRs{digest.SHA1: {10: other}})
	var me *MismatchError
	if !errors.As(err, &me) || me.PCR != 10 || me.From != 0 {
		t.Errorf("Replay against a foreign pcr: %v, want a MismatchError for pcr 10 from record 0", err)
	}
}

func TestSharedDepCgnRefused(t *testing.T) {
	for _, opts := range []Options{{}, {Bank: digest.SHA256}, {BigEndian: true}} {
		_, err := ReadFile(sharedTestdata(t, "ima-logs/rpi-ima-dep-cgn.bin"), opts)
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrFormat) {
			t.Fatalf("ReadFile(dep-cgn, %+v) = %v, want a ParseError", opts, err)
		}
		if !strings.Contains(err.Error(), "rpi-ima-dep-cgn.bin: offset ") || pe.Record != 0 {
			t.Errorf("error %q does not name the file, offset and record 0", err)
		}
		t.Logf("%+v: %v", opts, err)
	}
	_, err := ReadFile(sharedTestdata(t, "ima-logs/rpi-ima-dep-cgn.ascii"), Options{})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 1 {
		t.Fatalf("ReadFile(dep-cgn ascii) = %v, want a ParseError on line 1", err)
	}
	t.Log(err)
}

// TestSharedRPIBootAggregate: the Raspberry Pi measured nothing into PCRs 0-9,
// so its sha256 boot_aggregate is that of ten zero PCRs.
func TestSharedRPIBootAggregate(t *testing.T) {
	l, err := ParseBinary(readShared(t, "ima-logs/rpi-ima-ng.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	zero := map[int][]byte{}
	for i := range 10 {
		zero[i] = make([]byte, 32)
	}
	if err := l.CheckBootAggregate(digest.PCRs{digest.SHA256: zero}); err != nil {
		t.Error(err)
	}
	zero[3] = bytes.Repeat([]byte{1}, 32)
	if err := l.CheckBootAggregate(digest.PCRs{digest.SHA256: zero}); !errors.Is(err, ErrBootAggregate) {
		t.Errorf("other boot pcrs: %v, want ErrBootAggregate", err)
	}
	if err := l.CheckBootAggregate(digest.PCRs{}); err == nil || errors.Is(err, ErrBootAggregate) {
		t.Errorf("no boot pcrs: %v, want an error other than ErrBootAggregate", err)
	}
}
