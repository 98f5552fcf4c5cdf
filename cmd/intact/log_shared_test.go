// SPDX-License-Identifier: Apache-2.0

//go:build shareddata

package main

// The extra run (go test -tags shareddata): the log commands over the
// Raspberry Pi lists in ../shared/testdata, a GPL-2.0 project's data that
// stays out of this repository (testdata/README.md).

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func shared(t *testing.T, rel string) string { return testenv.Shared(t, rel) }

const rpiPCR10 = "f38695bbd9479953543813fb13bb88235440504e"

func TestSharedLogConvertRPI(t *testing.T) {
	bin, ascii := shared(t, "ima-logs/rpi-ima-ng.bin"), shared(t, "ima-logs/rpi-ima-ng.ascii")
	wantASCII, _ := os.ReadFile(ascii)
	wantBin, _ := os.ReadFile(bin)
	if out := mustRun(t, 0, "log", "convert", "--to", "ascii", bin); out != string(wantASCII) {
		t.Error("log convert --to ascii of rpi-ima-ng.bin differs from rpi-ima-ng.ascii")
	}
	out := filepath.Join(t.TempDir(), "list.bin")
	mustRun(t, 0, "log", "convert", "--to", "binary", "-o", out, ascii)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, wantBin) {
		t.Error("log convert --to binary of rpi-ima-ng.ascii differs from rpi-ima-ng.bin")
	}
	_, stderr, code := runCLI(t, "log", "convert", bin)
	if code != 2 || !strings.Contains(stderr, "--to") {
		t.Errorf("convert without --to: exit %d, %q", code, stderr)
	}
}

func TestSharedLogShow(t *testing.T) {
	out := mustRun(t, 0, "log", "show", "--json", shared(t, "ima-logs/rpi-ima-ng.bin"))
	dec := json.NewDecoder(strings.NewReader(out))
	n := 0
	for dec.More() {
		var r struct {
			Name           string
			TemplateHashOK *bool `json:"template_hash_ok"`
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.TemplateHashOK == nil || !*r.TemplateHashOK {
			t.Errorf("record %d: template_hash_ok %v", n, r.TemplateHashOK)
		}
		n++
	}
	if n != 922 {
		t.Errorf("log show --json printed %d records, want 922", n)
	}
	// A tampered list: the bad template hash is an integrity failure.
	b, _ := os.ReadFile(shared(t, "ima-logs/rpi-ima-ng.bin"))
	i := bytes.Index(b, []byte("/usr/lib/systemd/systemd"))
	b[i+1] = 'X'
	bad := filepath.Join(t.TempDir(), "binary_runtime_measurements")
	os.WriteFile(bad, b, 0o644)
	_, stderr, code := runCLI(t, "log", "show", bad)
	if code != 1 || !strings.Contains(stderr, "record 1: the template hash does not match") {
		t.Errorf("log show of a tampered list: exit %d, %q", code, stderr)
	}
}

func TestSharedLogRefusesDepCgn(t *testing.T) {
	for _, f := range []string{"rpi-ima-dep-cgn.bin", "rpi-ima-dep-cgn.ascii"} {
		_, stderr, code := runCLI(t, "log", "show", shared(t, "ima-logs/"+f))
		if code != 2 || !strings.Contains(stderr, f) || !(strings.Contains(stderr, "offset 24") || strings.Contains(stderr, "line 1")) {
			t.Errorf("log show %s: exit %d, stderr %q", f, code, stderr)
		}
	}
}

func TestSharedLogReplay(t *testing.T) {
	bin := shared(t, "ima-logs/rpi-ima-ng.bin")
	out := mustRun(t, 0, "log", "replay", bin)
	if !strings.Contains(out, "sha1 pcr 10: "+rpiPCR10) {
		t.Errorf("log replay printed %q, want sha1 pcr 10 = %s", out, rpiPCR10)
	}
	dir := t.TempDir()
	// evmctl's PCR file format.
	good := filepath.Join(dir, "pcrs")
	os.WriteFile(good, []byte("PCR-00: "+strings.Repeat("00", 20)+"\nPCR-10: "+rpiPCR10+"\n"), 0o644)
	out = mustRun(t, 0, "log", "replay", "--pcrs", "sha1,"+good, bin)
	if !strings.Contains(out, "verified 922 of 922 records") {
		t.Errorf("log replay --pcrs: %q", out)
	}
	// tpm2_pcrread's output format, with spaces and 0x.
	yaml := filepath.Join(dir, "pcrread")
	os.WriteFile(yaml, []byte("  sha1:\n    10: 0x"+strings.ToUpper(rpiPCR10)+"\n  sha256:\n    0 : 0x"+strings.Repeat("00", 32)+"\n"), 0o644)
	out = mustRun(t, 0, "log", "replay", "--json", "--pcrs", yaml, bin)
	var j struct {
		Verified *int
		Prefix   map[string]int
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.Verified == nil || *j.Verified != 922 || j.Prefix["sha1"] != 922 {
		t.Errorf("log replay --json: %s (%v)", out, err)
	}
	// The Raspberry Pi measured nothing into PCRs 0-9: its boot_aggregate
	// (sha256) is that of ten zero PCRs, and of no other values.
	boot := filepath.Join(dir, "boot")
	bootPCRs := func(v string) {
		var b strings.Builder
		for i := range 10 {
			fmt.Fprintf(&b, "PCR-%02d: %s\n", i, strings.Repeat(v, 32))
		}
		os.WriteFile(boot, []byte(b.String()), 0o644)
	}
	bootPCRs("00")
	out = mustRun(t, 0, "log", "replay", "--pcrs", "sha1,"+good, "--pcrs", "sha256,"+boot, bin)
	if !strings.Contains(out, "boot_aggregate: matches the boot pcrs") {
		t.Errorf("log replay with zero boot pcrs: %q", out)
	}
	bootPCRs("01")
	_, stderr, code := runCLI(t, "log", "replay", "--pcrs", "sha1,"+good, "--pcrs", "sha256,"+boot, bin)
	if code != 1 || !strings.Contains(stderr, "boot_aggregate does not match") {
		t.Errorf("log replay with other boot pcrs: exit %d, %q", code, stderr)
	}
	// --sha1-padded: the sha256 bank of a kernel before 5.8.
	out = mustRun(t, 0, "log", "replay", "--sha1-padded", "--banks", "sha256", bin)
	padded := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "sha256 pcr 10: ")
	pf := filepath.Join(dir, "padded")
	os.WriteFile(pf, []byte("PCR-10: "+padded+"\n"), 0o644)
	if out := mustRun(t, 0, "log", "replay", "--sha1-padded", "--pcrs", "sha256,"+pf, bin); !strings.Contains(out, "verified 922 of 922") {
		t.Errorf("log replay --sha1-padded --pcrs: %q", out)
	}
	if _, _, code := runCLI(t, "log", "replay", "--pcrs", "sha256,"+pf, bin); code != 1 {
		t.Errorf("per-bank replay against a padded value: exit %d, want 1", code)
	}
	// A PCR from somewhere else: exit 1, the first record named.
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("PCR-10: "+hex.EncodeToString(bytes.Repeat([]byte{7}, 20))+"\n"), 0o644)
	_, stderr, code = runCLI(t, "log", "replay", "--pcrs", bad, bin)
	if code != 1 || !strings.Contains(stderr, "no prefix from record 0") {
		t.Errorf("log replay against a wrong pcr: exit %d, %q", code, stderr)
	}
	os.WriteFile(bad, []byte("PCR-10 deadbeef\n"), 0o644)
	if _, stderr, code := runCLI(t, "log", "replay", "--pcrs", bad, bin); code != 2 || !strings.Contains(stderr, "line 1") {
		t.Errorf("log replay with a malformed pcr file: exit %d, %q", code, stderr)
	}
}
