// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// pcrreadOut is tpm2_pcrread's output (tpm2-tools 5), two banks.
var pcrreadOut = "sha1:\n" +
	"  0 : 0x" + strings.Repeat("00", 20) + "\n" +
	"  10: 0x" + strings.Repeat("AB", 20) + "\n" +
	"sha256:\n" +
	"  0 : 0x" + strings.Repeat("01", 32) + "\n" +
	"  13: 0x" + strings.Repeat("Cd", 32) + "\n"

// evmctlPCRs is an evmctl --pcrs file (the TPM 1.2 sysfs "pcrs" form;
// the value may be split by spaces).
var evmctlPCRs = "PCR-00: " + strings.Repeat("00 ", 20) + "\n" +
	"PCR-10: " + strings.Repeat("ab", 20) + "\n"

func TestParsePCRFile(t *testing.T) {
	got, err := ParsePCRFile([]byte(pcrreadOut), "")
	if err != nil {
		t.Fatal(err)
	}
	want := PCRs{
		SHA1:   {0: bytes.Repeat([]byte{0}, 20), 10: bytes.Repeat([]byte{0xab}, 20)},
		SHA256: {0: bytes.Repeat([]byte{1}, 32), 13: bytes.Repeat([]byte{0xcd}, 32)},
	}
	if !equalPCRs(got, want) {
		t.Errorf("tpm2_pcrread: got %x, want %x", got, want)
	}
	// evmctl's form: the bank from the value size, or named.
	got, err = ParsePCRFile([]byte(evmctlPCRs), "")
	if err != nil || !equalPCRs(got, PCRs{SHA1: want[SHA1]}) {
		t.Errorf("evmctl form: %x, %v", got, err)
	}
	sha256File := "PCR-13: " + strings.Repeat("cd", 32) + "\n"
	if got, err = ParsePCRFile([]byte(sha256File), "sha256"); err != nil || !equalPCRs(got, PCRs{SHA256: {13: want[SHA256][13]}}) {
		t.Errorf("evmctl form, sha256 named: %x, %v", got, err)
	}
	// A named bank must match the values' size.
	if _, err = ParsePCRFile([]byte(sha256File), "sha1"); !errors.Is(err, ErrPCRFile) {
		t.Errorf("sha256 values named sha1: %v", err)
	}
	// Empty: no values, no error.
	if got, err = ParsePCRFile(nil, ""); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v %v", got, err)
	}
}

func TestParsePCRFileRejects(t *testing.T) {
	h20, h32 := strings.Repeat("00", 20), strings.Repeat("00", 32)
	for _, tc := range []struct {
		name, in, bank string
		line           int
	}{
		{"unknown bank name", "PCR-00: " + h20, "sha257", 0},
		{"no colon", "PCR-00 " + h20, "", 1},
		{"bad index", "PCR-xx: " + h20, "", 1},
		{"index 24", "PCR-24: " + h20, "", 1},
		{"negative index", "sha1:\n -1 : 0x" + h20, "", 2},
		{"not hex", "PCR-00: zz" + h20[2:], "", 1},
		{"odd hex", "PCR-00: 0" + h20, "", 1},
		{"size of no bank", "PCR-00: 0011", "", 1},
		{"value before a bank", "0 : 0x" + h20, "", 1},
		{"unknown bank line", "sha257:\n0 : 0x" + h20, "", 1},
		{"short value", "sha256:\n\n  0 : 0x" + h20, "", 3},
		{"long value", "sha1:\n  0 : 0x" + h32, "", 2},
		{"garbage line", "sha1:\n  0 : 0x" + h20 + "\nhello world", "", 3},
		{"line too long", "sha1:\n" + strings.Repeat("0", 70000), "", 2},
	} {
		_, err := ParsePCRFile([]byte(tc.in), tc.bank)
		var pe *PCRFileError
		if !errors.As(err, &pe) || !errors.Is(err, ErrPCRFile) || pe.Line != tc.line {
			t.Errorf("%s: %v, want a PCRFileError at line %d", tc.name, err, tc.line)
		}
	}
}

// TestParsePCRFileMangling: every truncation and every one-byte change
// of valid files either fails with a PCRFileError or parses to values
// that are well formed (checkPCRs).
func TestParsePCRFileMangling(t *testing.T) {
	for _, in := range []string{pcrreadOut, evmctlPCRs} {
		for _, bank := range []string{"", "sha1"} {
			b := []byte(in)
			for i := 0; i <= len(b); i++ {
				checkParse(t, b[:i], bank)
			}
			for i := range b {
				for _, c := range []byte{0, ' ', ':', '\n', 'x', '0', 'f', '-', 0xff} {
					m := bytes.Clone(b)
					m[i] = c
					checkParse(t, m, bank)
				}
			}
		}
	}
}

// checkParse parses b and holds the result to the parser's promises.
func checkParse(t *testing.T, b []byte, bank string) {
	t.Helper()
	got, err := ParsePCRFile(b, bank)
	if err != nil {
		var pe *PCRFileError
		if !errors.As(err, &pe) || !errors.Is(err, ErrPCRFile) {
			t.Fatalf("%q: error %v is not a PCRFileError", b, err)
		}
		return
	}
	for a, vals := range got {
		if !a.Known() {
			t.Fatalf("%q: unknown bank %v", b, a)
		}
		for i, v := range vals {
			if i < 0 || i >= NumPCRs || len(v) != a.Size() {
				t.Fatalf("%q: %s pcr %d of %d bytes", b, a, i, len(v))
			}
		}
	}
	// What was parsed formats back (as tpm2_pcrread does) to the same
	// values.
	again, err := ParsePCRFile([]byte(formatPCRRead(got)), "")
	if err != nil || !equalPCRs(again, got) {
		t.Fatalf("%q: parsed %x, reformatted %x (%v)", b, got, again, err)
	}
}

func formatPCRRead(p PCRs) string {
	var sb strings.Builder
	for _, a := range p.Banks() {
		fmt.Fprintf(&sb, "%s:\n", a)
		idx := slices.Sorted(maps.Keys(p[a]))
		for _, i := range idx {
			fmt.Fprintf(&sb, "  %-2d: 0x%X\n", i, p[a][i])
		}
	}
	return sb.String()
}

func equalPCRs(a, b PCRs) bool {
	return maps.EqualFunc(a, b, func(x, y map[int][]byte) bool { return maps.EqualFunc(x, y, bytes.Equal) })
}

// FuzzParsePCRFile: no input makes the parser panic, fail without a
// PCRFileError, or return values of the wrong size or index.
func FuzzParsePCRFile(f *testing.F) {
	f.Add([]byte(pcrreadOut), "")
	f.Add([]byte(evmctlPCRs), "")
	f.Add([]byte(evmctlPCRs), "sha1")
	f.Add([]byte("PCR-13: "+strings.Repeat("cd", 32)), "sha256")
	f.Add([]byte("sha384:\n 23 : 0x"+strings.Repeat("01", 48)), "")
	f.Fuzz(func(t *testing.T, b []byte, bank string) {
		checkParse(t, b, bank)
	})
}
