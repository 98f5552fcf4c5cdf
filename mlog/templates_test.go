// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
)

// fields builds template data from field values (little-endian).
func fields(vals ...[]byte) []byte {
	var b []byte
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

func dng(prefix string, d []byte) []byte { return append([]byte(prefix+"\x00"), d...) }
func cstr(s string) []byte               { return append([]byte(s), 0) }
func u32(v uint32) []byte                { return binary.LittleEndian.AppendUint32(nil, v) }
func u16(v uint16) []byte                { return binary.LittleEndian.AppendUint16(nil, v) }

// TestTemplates: each template renders as the kernel prints it, round-trips
// through binary and ASCII, and its template digest checks.
func TestTemplates(t *testing.T) {
	d32 := bytes.Repeat([]byte{0xab}, 32)
	d20 := bytes.Repeat([]byte{0xcd}, 20)
	sig := []byte{3, 2, 4, 0xde, 0xad, 0xbe, 0xef, 0, 1, 0x55}
	imaData := append(bytes.Clone(d20), u32(4)...)
	imaData = append(imaData, "/bin"...)
	for _, tc := range []struct {
		template string
		data     []byte
		ascii    string // after the template name
	}{
		{TemplateIMA, imaData, " " + hex.EncodeToString(d20) + " /bin"},
		{TemplateIMANG, fields(dng("sha256:", d32), cstr("/bin/sh")), " sha256:" + hex.EncodeToString(d32) + " /bin/sh"},
		{TemplateIMASig, fields(dng("sha256:", d32), cstr("/bin/sh"), sig), " sha256:" + hex.EncodeToString(d32) + " /bin/sh " + hex.EncodeToString(sig)},
		{TemplateIMASig, fields(dng("sha256:", d32), cstr("/bin/sh"), nil), " sha256:" + hex.EncodeToString(d32) + " /bin/sh "},
		{TemplateIMABuf, fields(dng("sha256:", d32), cstr("kexec-cmdline"), []byte("ro quiet")), " sha256:" + hex.EncodeToString(d32) + " kexec-cmdline " + hex.EncodeToString([]byte("ro quiet"))},
		{TemplateIMAModsig, fields(dng("sha256:", d32), cstr("/m.ko"), nil, dng("sha256:", d32), []byte{0x30, 0x82}), " sha256:" + hex.EncodeToString(d32) + " /m.ko  sha256:" + hex.EncodeToString(d32) + " 3082"},
		{TemplateIMAModsig, fields(dng("sha256:", d32), cstr("/m.ko"), nil, nil, nil), " sha256:" + hex.EncodeToString(d32) + " /m.ko   "},
		{TemplateEVMSig, fields(dng("sha256:", d32), cstr("/etc/x"), []byte{5, 2}, cstr("security.ima|security.selinux"), append(u32(3), u32(2)...), []byte{4, 1, 2, 'o', 'k'}, u32(1000), u32(100), u16(0o100644)),
			" sha256:" + hex.EncodeToString(d32) + " /etc/x 0502 security.ima|security.selinux 0300000002000000 040102" + hex.EncodeToString([]byte("ok")) + " 1000 100 33188"},
		{TemplateIMANGv2, fields(dng("ima:sha256:", d32), cstr("/bin/sh")), " ima:sha256:" + hex.EncodeToString(d32) + " /bin/sh"},
		{TemplateIMASigv2, fields(dng("verity:sha256:", d32), cstr("/bin/sh"), sig), " verity:sha256:" + hex.EncodeToString(d32) + " /bin/sh " + hex.EncodeToString(sig)},
		{"d-ng|n-ng|buf", fields(dng("sha384:", d32[:16]), cstr("x"), []byte{1}), " sha384:" + hex.EncodeToString(d32[:16]) + " x 01"},
	} {
		t.Run(tc.template, func(t *testing.T) {
			r := Record{PCR: 10, Template: tc.template, Data: tc.data}
			var err error
			if r.Digest, err = r.TemplateDigest(digest.SHA1); err != nil {
				t.Fatal(err)
			}
			line, err := r.AppendASCII(nil)
			if err != nil {
				t.Fatal(err)
			}
			want := "10 " + hex.EncodeToString(r.Digest) + " " + tc.template + tc.ascii + "\n"
			if string(line) != want {
				t.Errorf("ASCII:\n got %q\nwant %q", line, want)
			}
			bin := r.AppendBinary(nil)
			l, err := ParseBinary(bin, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.CheckTemplateDigests(); err != nil {
				t.Error(err)
			}
			la, err := ParseASCII(line, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if back, _ := la.MarshalBinary(); !bytes.Equal(back, bin) {
				t.Errorf("ASCII -> binary differs:\n%x\n%x", back, bin)
			}
		})
	}
}

// TestTemplateIMADigest: template ima's digest is SHA-1 of d and the name
// zero-padded to 256 bytes, not of its binary data.
func TestTemplateIMADigest(t *testing.T) {
	d := bytes.Repeat([]byte{1}, 20)
	data := append(bytes.Clone(d), u32(5)...)
	data = append(data, "/init"...)
	r := Record{PCR: 10, Template: TemplateIMA, Data: data}
	got, err := r.TemplateDigest(digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	name := make([]byte, 256)
	copy(name, "/init")
	want := sha1.Sum(append(bytes.Clone(d), name...))
	if !bytes.Equal(got, want[:]) {
		t.Errorf("ima template digest %x, want %x", got, want)
	}
	long := Record{PCR: 10, Template: TemplateIMA, Data: append(append(bytes.Clone(d), u32(256)...), bytes.Repeat([]byte{'a'}, 256)...)}
	if _, err := long.TemplateDigest(digest.SHA1); err == nil {
		t.Error("template ima with a 256-byte name: no error")
	}
}

// TestUnknownTemplate: fields of an unknown template are kept raw, the
// template digest is still checked, and ASCII output is hex per field.
func TestUnknownTemplate(t *testing.T) {
	data := fields([]byte("abc"), []byte{0, 1})
	r := Record{PCR: 11, Template: "my-template", Data: data}
	r.Digest, _ = r.TemplateDigest(digest.SHA1)
	l, err := ParseBinary(r.AppendBinary(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckTemplateDigests(); err != nil {
		t.Error(err)
	}
	fs, err := l.UnverifiedRecords()[0].Fields()
	if err != nil || len(fs) != 2 || fs[0].ID != "" || string(fs[0].Data) != "abc" {
		t.Errorf("Fields() = %+v, %v", fs, err)
	}
	line, _ := l.UnverifiedRecords()[0].AppendASCII(nil)
	if !strings.HasSuffix(string(line), " my-template 616263 0001\n") {
		t.Errorf("ASCII %q", line)
	}
	l.records[0].Data = fields([]byte("abd"), []byte{0, 1})
	var th *TemplateHashError
	if err := l.CheckTemplateDigests(); !errors.As(err, &th) || th.Record != 0 {
		t.Errorf("changed data: %v, want a TemplateHashError", err)
	}
	// Its ASCII form cannot be parsed back.
	if _, err := ParseASCII(line, Options{}); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseASCII of an unknown template: %v", err)
	}
}

func TestBigEndian(t *testing.T) {
	bin := keylimeBinary(t)
	le, _ := ParseBinary(bin, Options{})
	// Re-encode as a big-endian kernel would: every integer swapped.
	var be []byte
	for _, r := range le.UnverifiedRecords() {
		fs, _ := r.Fields()
		var data []byte
		for _, f := range fs {
			data = binary.BigEndian.AppendUint32(data, uint32(len(f.Data)))
			data = append(data, f.Data...)
		}
		be = binary.BigEndian.AppendUint32(be, uint32(r.PCR))
		be = append(be, r.Digest...)
		be = binary.BigEndian.AppendUint32(be, uint32(len(r.Template)))
		be = append(be, r.Template...)
		be = binary.BigEndian.AppendUint32(be, uint32(len(data)))
		be = append(be, data...)
	}
	l, err := ParseBinary(be, Options{BigEndian: true})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := le.MarshalASCII()
	a2, _ := l.MarshalASCII()
	if !bytes.Equal(a1, a2) {
		t.Error("big-endian list renders differently")
	}
	if back, _ := l.MarshalBinary(); !bytes.Equal(back, be) {
		t.Error("big-endian list does not round-trip")
	}
	// Read as little-endian it is refused at offset 0.
	var pe *ParseError
	if _, err := ParseBinary(be, Options{}); !errors.As(err, &pe) || pe.Offset != 0 {
		t.Errorf("big-endian list read as little-endian: %v", err)
	}
}

func TestBankFromFileName(t *testing.T) {
	dir := t.TempDir()
	bin := keylimeBinary(t)
	p := filepath.Join(dir, "binary_runtime_measurements_sha1")
	os.WriteFile(p, bin, 0o644)
	if l, err := ReadFile(p, Options{}); err != nil || l.Bank() != digest.SHA1 {
		t.Errorf("_sha1: %v", err)
	}
	p = filepath.Join(dir, "binary_runtime_measurements_sha256")
	os.WriteFile(p, bin, 0o644)
	if _, err := ReadFile(p, Options{}); !errors.Is(err, ErrFormat) {
		t.Errorf("a sha1 list named _sha256: %v, want ErrFormat", err)
	}
}

// TestBootAggregateEvmctl: BootAggregate equals evmctl ima_boot_aggregate
// for the same PCR values, and CheckBootAggregate accepts a list whose
// boot_aggregate record holds it.
func TestBootAggregateEvmctl(t *testing.T) {
	evmctl := testenv.RequireTool(t, "evmctl")
	dir := t.TempDir()
	pcrs := map[digest.Algo]map[int][]byte{digest.SHA1: {}, digest.SHA256: {}}
	args := []string{"ima_boot_aggregate"}
	for _, bank := range []digest.Algo{digest.SHA1, digest.SHA256} {
		var b strings.Builder
		for i := range 24 {
			v := bytes.Repeat([]byte{byte(i*7 + int(bank))}, bank.Size())
			pcrs[bank][i] = v
			fmt.Fprintf(&b, "PCR-%02d: %x\n", i, v)
		}
		f := filepath.Join(dir, bank.String())
		os.WriteFile(f, []byte(b.String()), 0o644)
		args = append(args, "--pcrs", bank.String()+","+f)
	}
	out, err := exec.Command(evmctl, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("evmctl %v: %v\n%s", args, err, out)
	}
	for _, bank := range []digest.Algo{digest.SHA1, digest.SHA256} {
		agg, err := BootAggregate(bank, pcrs[bank])
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s:%x\n", bank, agg); !strings.Contains(string(out), want) {
			t.Errorf("evmctl printed %q, want a line %q", out, want)
		}
	}
	agg, _ := BootAggregate(digest.SHA256, pcrs[digest.SHA256])
	r, _ := NewRecord(10, TemplateIMANG, FileMeasurement{Algo: digest.SHA256, Digest: agg, Path: BootAggregateName}, digest.SHA1)
	l := NewList(Options{})
	l.Add(r)
	if err := l.CheckBootAggregate(digest.PCRs(pcrs)); err != nil {
		t.Error(err)
	}
	pcrs[digest.SHA256][9] = make([]byte, 32) // PCR 9 is in the sha256 aggregate
	if err := l.CheckBootAggregate(digest.PCRs(pcrs)); !errors.Is(err, ErrBootAggregate) {
		t.Errorf("changed pcr 9: %v, want ErrBootAggregate", err)
	}
}

// TestViolationRecord: a violation record, as the kernel writes for
// open_writers: the file data digest is zeros, the template digest is
// zeros, the PCR is extended with ff, and it survives the binary list.
func TestViolationRecord(t *testing.T) {
	m := FileMeasurement{Algo: digest.SHA256, Digest: make([]byte, 32), Path: "/bin/sh", Violation: true}
	r, err := NewRecord(10, TemplateIMANG, m, digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Violation() || len(r.Digest) != 20 {
		t.Fatalf("digest %x: not a violation", r.Digest)
	}
	ext, err := r.ExtendDigest(digest.SHA256)
	if err != nil || !bytes.Equal(ext, bytes.Repeat([]byte{0xff}, 32)) {
		t.Errorf("extend digest %x %v, want ff", ext, err)
	}
	l, err := ParseBinary(r.AppendBinary(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.UnverifiedRecords(); len(got) != 1 || !got[0].Violation() {
		t.Errorf("parsed back: %+v", got)
	}
	m.Digest[0] = 1
	if _, err := NewRecord(10, TemplateIMANG, m, digest.SHA1); err == nil {
		t.Error("a violation with a non-zero digest was built")
	}
}
