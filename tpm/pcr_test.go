// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

// openSim opens the embedded simulator, closed at cleanup.
func openSim(t *testing.T) *tpm.TPM {
	t.Helper()
	tp, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

// openSpec opens spec; the caller closes it.
func openSpec(t *testing.T, spec string) *tpm.TPM {
	t.Helper()
	tp, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// backends runs f against the simulator and against a fresh swtpm.
func backends(t *testing.T, f func(t *testing.T, open func() *tpm.TPM)) {
	t.Run("sim", func(t *testing.T) {
		tp := openSim(t)
		f(t, func() *tpm.TPM { return tp })
	})
	t.Run("swtpm", func(t *testing.T) {
		sw := tpmtest.Start(t, tpmtest.Options{})
		tp := openSpec(t, sw.Spec())
		t.Cleanup(func() { tp.Close() })
		f(t, func() *tpm.TPM { return tp })
	})
}

func TestBanksAndExtend(t *testing.T) {
	backends(t, func(t *testing.T, open func() *tpm.TPM) {
		tp := open()
		bs, err := tp.Banks()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range bs {
			names = append(names, tpm.BankName(b.Hash))
			if len(b.PCRs) != tpm.NumPCRs {
				t.Errorf("bank %s: %d pcrs allocated", tpm.BankName(b.Hash), len(b.PCRs))
			}
		}
		t.Logf("banks: %v", names)
		if !strings.Contains(strings.Join(names, ","), "sha256") {
			t.Fatalf("no sha256 bank in %v", names)
		}
		before, err := tp.ReadAllPCRs()
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("intact test event")
		if err := tp.ExtendPCRData(16, data); err != nil {
			t.Fatal(err)
		}
		after, err := tp.ReadAllPCRs()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			a, _ := digest.AlgoFor(b.Hash)
			h := b.Hash.New()
			h.Write(before[a][16])
			d := b.Hash.New()
			d.Write(data)
			h.Write(d.Sum(nil))
			if want := h.Sum(nil); !bytes.Equal(after[a][16], want) {
				t.Errorf("%s pcr 16 = %x, want %x", tpm.BankName(b.Hash), after[a][16], want)
			}
			for p := 0; p < tpm.NumPCRs; p++ {
				if p != 16 && !bytes.Equal(before[a][p], after[a][p]) {
					t.Errorf("%s pcr %d changed", tpm.BankName(b.Hash), p)
				}
			}
		}
	})
}

func TestExtendBadInput(t *testing.T) {
	tp := openSim(t)
	bs, err := tp.Banks()
	if err != nil {
		t.Fatal(err)
	}
	// full returns a valid digest per allocated bank, changed by f.
	full := func(f func(map[crypto.Hash][]byte)) map[crypto.Hash][]byte {
		m := map[crypto.Hash][]byte{}
		for _, b := range bs {
			m[b.Hash] = make([]byte, b.Hash.Size())
		}
		f(m)
		return m
	}
	d := sha256.Sum256(nil)
	for name, c := range map[string]struct {
		pcr     int
		digests map[crypto.Hash][]byte
	}{
		"missing bank": {16, map[crypto.Hash][]byte{crypto.SHA256: d[:]}},
		"short digest": {16, full(func(m map[crypto.Hash][]byte) { m[crypto.SHA1] = m[crypto.SHA1][1:] })},
		"bad index":    {24, full(func(map[crypto.Hash][]byte) {})},
		"extra bank":   {16, full(func(m map[crypto.Hash][]byte) { m[crypto.SHA224] = make([]byte, 28) })},
	} {
		t.Run(name, func(t *testing.T) {
			before, _ := tp.ReadPCRs(crypto.SHA256, []int{16})
			err := tp.ExtendPCR(c.pcr, c.digests)
			if !errors.Is(err, tpm.ErrBadPCRs) {
				t.Fatalf("err = %v, want ErrBadPCRs", err)
			}
			after, _ := tp.ReadPCRs(crypto.SHA256, []int{16})
			if !bytes.Equal(before[16], after[16]) {
				t.Error("pcr 16 changed on a refused extend")
			}
		})
	}
	if err := tp.ExtendPCR(16, full(func(map[crypto.Hash][]byte) {})); err != nil {
		t.Fatalf("valid extend: %v", err)
	}
}

func TestParsePCRList(t *testing.T) {
	good := map[string][]int{"0,2,4,7": {0, 2, 4, 7}, "7": {7}, "23, 0": {0, 23}}
	for in, want := range good {
		got, err := tpm.ParsePCRList(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParsePCRList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "24", "-1", "1,1", "a", "1,,2", "0x1", "+1", "01", "1;2"} {
		if _, err := tpm.ParsePCRList(in); !errors.Is(err, tpm.ErrBadPCRs) {
			t.Errorf("ParsePCRList(%q): err = %v, want ErrBadPCRs", in, err)
		}
	}
}

// pcrreadRE matches one PCR line of tpm2_pcrread's output.
var pcrreadRE = regexp.MustCompile(`^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)$`)

// parsePCRRead parses tpm2_pcrread's YAML-ish output into bank -> pcr -> value.
func parsePCRRead(t *testing.T, out string) map[string]map[int]string {
	t.Helper()
	res := map[string]map[int]string{}
	bank := ""
	for _, line := range strings.Split(out, "\n") {
		if s := strings.TrimSpace(line); strings.HasSuffix(s, ":") && !strings.Contains(s, " ") {
			bank = strings.TrimSuffix(s, ":")
			res[bank] = map[int]string{}
			continue
		}
		if m := pcrreadRE.FindStringSubmatch(line); m != nil && bank != "" {
			var p int
			fmt.Sscan(m[1], &p)
			res[bank][p] = strings.ToLower(m[2])
		}
	}
	return res
}

// TestPCRInterop proves: the PCR values intact reads equal tpm2_pcrread's,
// and PCRs intact extends are seen by tpm2_pcrread.
func TestPCRInterop(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{})
	read := func() map[string]map[int]string {
		tp := openSpec(t, sw.Spec())
		defer tp.Close()
		all, err := tp.ReadAllPCRs()
		if err != nil {
			t.Fatal(err)
		}
		res := map[string]map[int]string{}
		for h, vals := range all {
			res[h.String()] = map[int]string{}
			for p, v := range vals {
				res[h.String()][p] = hex.EncodeToString(v)
			}
		}
		return res
	}
	compare := func(step string) {
		ours := read()
		theirs := parsePCRRead(t, sw.Tool(t, "tpm2_pcrread"))
		if len(theirs) == 0 {
			t.Fatalf("%s: no banks parsed from tpm2_pcrread", step)
		}
		for bank, vals := range theirs {
			if len(vals) != tpm.NumPCRs {
				t.Fatalf("%s: tpm2_pcrread %s: %d pcrs parsed", step, bank, len(vals))
			}
			for p, v := range vals {
				if ours[bank][p] != v {
					t.Errorf("%s: %s pcr %d: intact %s, tpm2_pcrread %s", step, bank, p, ours[bank][p], v)
				}
			}
		}
		if len(ours) != len(theirs) {
			t.Errorf("%s: intact banks %d, tpm2_pcrread banks %d", step, len(ours), len(theirs))
		}
	}
	compare("initial")

	tp := openSpec(t, sw.Spec())
	if err := tp.ExtendPCRData(9, []byte("seen by tpm2_pcrread")); err != nil {
		t.Fatal(err)
	}
	tp.Close()
	theirs := parsePCRRead(t, sw.Tool(t, "tpm2_pcrread", "sha256:9"))
	if v := theirs["sha256"][9]; v == "" || v == strings.Repeat("0", 64) {
		t.Fatalf("tpm2_pcrread sha256:9 = %q after intact's extend", v)
	}
	compare("after intact extend")

	sw.Tool(t, "tpm2_pcrextend", "10:sha256="+strings.Repeat("ab", 32))
	compare("after tpm2_pcrextend")
}

func TestInfo(t *testing.T) {
	backends(t, func(t *testing.T, open func() *tpm.TPM) {
		info, err := open().Info()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", info)
		if info.Manufacturer == "" || info.SpecRevision == "0.00" || len(info.Banks) == 0 {
			t.Errorf("incomplete info %+v", info)
		}
	})
}

// TestInfoEK: swtpm provisioned by tpm2-tools with an EK at 0x81010001
// reports it; a fresh one does not.
func TestInfoEK(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{})
	info := func() *tpm.Info {
		tp := openSpec(t, sw.Spec())
		defer tp.Close()
		i, err := tp.Info()
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	if i := info(); i.EKPersistent || i.Manufacturer != "IBM" {
		t.Fatalf("fresh swtpm: %+v", i)
	}
	sw.Tool(t, "tpm2_createek", "-c", "0x81010001", "-G", "rsa", "-u", filepath.Join(t.TempDir(), "ek.pub"))
	if i := info(); !i.EKPersistent {
		t.Fatalf("after tpm2_createek: %+v", i)
	}
}
