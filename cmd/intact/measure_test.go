// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/mlog"
)

// pcrreadToEvmctl reads every PCR of bank with tpm2_pcrread and writes
// them in evmctl's --pcrs file format ("PCR-NN: HEX" lines).
func pcrreadToEvmctl(t *testing.T, sw *tpmtest.Swtpm, bank, path string) {
	t.Helper()
	out := sw.Tool(t, "tpm2_pcrread", bank+":0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23")
	re := regexp.MustCompile(`^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$`)
	var b strings.Builder
	n := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			fmt.Fprintf(&b, "PCR-%02s: %s\n", m[1], strings.ToLower(m[2]))
			n++
		}
	}
	if n != 24 {
		t.Fatalf("tpm2_pcrread %s printed %d pcrs:\n%s", bank, n, out)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMeasureEvmctlInterop: a list written by "intact measure" on a swtpm
// is accepted by evmctl ima_measurement against the PCRs as tpm2_pcrread
// reads them, and by "intact log replay"; a changed list is refused.
func TestMeasureEvmctlInterop(t *testing.T) {
	testenv.RequireTool(t, "evmctl")
	sw := tpmtest.Start(t, tpmtest.Options{})
	dir := t.TempDir()
	var files []string
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("file %d", i))
		os.WriteFile(p, []byte(strings.Repeat("content ", i+1)), 0o644)
		files = append(files, p)
	}
	list := filepath.Join(dir, "measurements")
	out := mustRun(t, 0, append([]string{"measure", "--log", list, "--tpm", sw.Spec()}, files[:2]...)...)
	if strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "13 ") || !strings.Contains(out, " ima-ng sha256:") {
		t.Errorf("measure printed %q", out)
	}
	// A second run appends, with template ima-sig (no signature label:
	// the sig field is empty).
	mustRun(t, 0, "measure", "--log", list, "--tpm", sw.Spec(), "--template", "ima-sig", files[2])
	l, err := mlog.ReadFile(list, mlog.Options{})
	if err != nil || l.Len() != 5 {
		t.Fatalf("list: %v, %d records, want the boot_aggregate, the boot record and 3", err, listLen(l))
	}
	if name, _ := l.UnverifiedRecords()[0].Name(); name != mlog.BootAggregateName {
		t.Errorf("first record %q, want %s", name, mlog.BootAggregateName)
	}
	if r := l.UnverifiedRecords()[1]; !mlog.IsBootRecord(1, &r) {
		t.Errorf("second record is not the boot record")
	}

	sha1, sha256 := filepath.Join(dir, "pcrs-sha1"), filepath.Join(dir, "pcrs-sha256")
	pcrreadToEvmctl(t, sw, "sha1", sha1)
	pcrreadToEvmctl(t, sw, "sha256", sha256)
	out, ok := evmctl(t, "ima_measurement", "--ignore-violations", "--pcrs", "sha1,"+sha1, "--pcrs", "sha256,"+sha256, list)
	if !ok {
		t.Fatalf("evmctl ima_measurement refused the list:\n%s", out)
	}
	t.Logf("evmctl ima_measurement: %s", out)
	out = mustRun(t, 0, "log", "replay", "--tpm", sw.Spec(), list)
	if !strings.Contains(out, "verified 5 of 5 records") {
		t.Errorf("log replay --tpm: %q", out)
	}
	mustRun(t, 0, "log", "replay", "--pcrs", "sha1,"+sha1, "--pcrs", "sha256,"+sha256, list)

	// A list with a record renamed no longer matches, for evmctl or intact.
	b, _ := os.ReadFile(list)
	bad := filepath.Join(dir, "tampered")
	os.WriteFile(bad, []byte(strings.Replace(string(b), "file 1", "file X", 1)), 0o644)
	if out, ok := evmctl(t, "ima_measurement", "--ignore-violations", "--pcrs", "sha1,"+sha1, "--pcrs", "sha256,"+sha256, bad); ok {
		t.Errorf("evmctl accepted a tampered list:\n%s", out)
	}
	if _, _, code := runCLI(t, "log", "replay", "--tpm", sw.Spec(), bad); code != 1 {
		t.Errorf("log replay of a tampered list: exit %d, want 1", code)
	}
}

func listLen(l *mlog.List) int {
	if l == nil {
		return 0
	}
	return l.Len()
}

// TestMeasureRefusesStaleList: a list whose PCR was reset (another boot)
// is refused with a hint, and nothing is appended.
func TestMeasureRefusesStaleList(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	list := filepath.Join(dir, "list")
	sw := tpmtest.Start(t, tpmtest.Options{})
	mustRun(t, 0, "measure", "--log", list, "--tpm", sw.Spec(), f)
	before, _ := os.ReadFile(list)
	sw2 := tpmtest.Start(t, tpmtest.Options{}) // a fresh TPM: PCR 13 is zero
	_, stderr, code := runCLI(t, "measure", "--log", list, "--tpm", sw2.Spec(), f)
	if code != 2 || !strings.Contains(stderr, "diverged") || !strings.Contains(stderr, "hint:") {
		t.Errorf("measure on a reset PCR: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(list); string(after) != string(before) {
		t.Error("the refused measure changed the list")
	}
	if _, stderr, code := runCLI(t, "measure", "--log", list, "--pcr", "24", f); code != 2 || !strings.Contains(stderr, "--pcr must be") {
		t.Errorf("measure --pcr 24: exit %d, %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, "measure", "--tpm", sw.Spec(), f); code != 2 || !strings.Contains(stderr, "--log") {
		t.Errorf("measure without --log: exit %d, %q", code, stderr)
	}
}

// TestMeasureIMASigEvmctl: an ima-sig record holds the file's
// security.ima signature (as written by evmctl ima_sign), and evmctl
// ima_measurement --verify-sig verifies it against the digest in the list.
func TestMeasureIMASigEvmctl(t *testing.T) {
	dir := xattrDir(t)
	key, cert := opensslKey(t, dir, "rsa", "rsa:2048")
	f := filepath.Join(dir, "signed")
	os.WriteFile(f, []byte("signed content\n"), 0o644)
	if out, ok := evmctl(t, "ima_sign", "--key", key, "-a", "sha256", f); !ok {
		t.Fatalf("evmctl ima_sign: %s", out)
	}
	label := getLabel(t, f)
	sw := tpmtest.Start(t, tpmtest.Options{})
	list := filepath.Join(dir, "measurements")
	out := mustRun(t, 0, "measure", "--log", list, "--tpm", sw.Spec(), "--template", "ima-sig", f)
	if !strings.HasSuffix(out, fmt.Sprintf(" %s %x\n", f, label)) {
		t.Errorf("measure printed %q, want the signature %x at the end", out, label)
	}
	sha1, sha256 := filepath.Join(dir, "pcrs-sha1"), filepath.Join(dir, "pcrs-sha256")
	pcrreadToEvmctl(t, sw, "sha1", sha1)
	pcrreadToEvmctl(t, sw, "sha256", sha256)
	out, ok := evmctl(t, "-v", "ima_measurement", "--ignore-violations", "--verify-sig", "--key", cert,
		"--pcrs", "sha1,"+sha1, "--pcrs", "sha256,"+sha256, list)
	t.Logf("evmctl ima_measurement --verify-sig: %s", out)
	// evmctl's exit status ignores signature failures: read its output.
	if !ok || !strings.Contains(out, "Matched per TPM bank") || !strings.Contains(out, f+": verification is OK") {
		t.Errorf("evmctl ima_measurement --verify-sig did not accept the list and its signature:\n%s", out)
	}
}

// TestMeasureIMASigFields: the sig field takes a signature from
// security.ima, else a portable EVM signature from security.evm, and is
// empty for a digest label.
func TestMeasureIMASigFields(t *testing.T) {
	dir := xattrDir(t)
	for _, tc := range []struct {
		name, ima, evm, want string
	}{
		{"digest label only", "0x0404" + strings.Repeat("00", 32), "", ""},
		{"portable evm signature", "0x0404" + strings.Repeat("11", 32), "0x050204aabbccdd0002beef", "050204aabbccdd0002beef"},
		{"ima signature first", "0x030204aabbccdd0002cafe", "0x050204aabbccdd0002beef", "030204aabbccdd0002cafe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			os.WriteFile(f, []byte(tc.name), 0o644)
			if out, err := exec.Command("setfattr", "-n", "security.ima", "-v", tc.ima, f).CombinedOutput(); err != nil {
				t.Fatalf("setfattr: %v %s", err, out)
			}
			if tc.evm != "" {
				if out, err := exec.Command("setfattr", "-n", "security.evm", "-v", tc.evm, f).CombinedOutput(); err != nil {
					t.Fatalf("setfattr: %v %s", err, out)
				}
			}
			// A fresh TPM: a new list must start from a PCR nobody extended.
			sw := tpmtest.Start(t, tpmtest.Options{})
			out := mustRun(t, 0, "measure", "--log", f+".list", "--tpm", sw.Spec(), "--template", "ima-sig", f)
			if want := " " + f + " " + tc.want + "\n"; !strings.HasSuffix(out, want) {
				t.Errorf("measure printed %q, want it to end in %q", out, want)
			}
		})
	}
}

// TestMeasureRefusesFIFO: a FIFO (or a symlink to /dev/zero) given to
// measure is refused at once, not waited on or read for ever; nothing is
// appended.
func TestMeasureRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	list := filepath.Join(dir, "list")
	sw := tpmtest.Start(t, tpmtest.Options{})
	for _, p := range []string{fifo, zero} {
		done := make(chan string, 1)
		go func() {
			_, stderr, code := runCLI(t, "measure", "--log", list, "--tpm", sw.Spec(), p)
			done <- fmt.Sprintf("%d %s", code, stderr)
		}()
		select {
		case got := <-done:
			if !strings.HasPrefix(got, "2 ") || !strings.Contains(got, "not a regular file") {
				t.Errorf("measure %s: %s", p, got)
			}
		case <-time.After(time.Minute):
			t.Fatalf("measure %s: no end after a minute", p)
		}
	}
	if b, _ := os.ReadFile(list); len(b) != 0 {
		t.Errorf("the list got %q", b)
	}
}
