// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm"
)

// TestListWritersAgree: the three writers of a measurement list — intactd,
// the attestation agent and "intact measure" — start and append to a list
// the same way (mlog.Measurer). Given TPMs in the same state, the same
// boot and the same file, their lists are byte for byte the same: the
// boot_aggregate of the TPM's boot PCRs, the kernel's boot id, then the
// file's ima-ng record; and each replays to its TPM's PCR. (Before
// mlog.Measurer, intactd wrote a boot_aggregate only with agent_listen and
// no boot id, the agent no boot id, and "intact measure" no
// boot_aggregate.)
func TestListWritersAgree(t *testing.T) {
	bin := binaries(t)
	file := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(file, []byte("#!/bin/sh\necho measured\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const pcr = 13
	// booted starts a TPM whose boot PCRs hold what a firmware measured.
	booted := func() *tpmtest.Swtpm {
		sw := tpmtest.Start(t, tpmtest.Options{})
		tp, err := tpm.Open(sw.Spec())
		if err != nil {
			t.Fatal(err)
		}
		defer tp.Close()
		for i := range 10 {
			if err := tp.ExtendPCRData(i, []byte{byte(i), 'f', 'w'}); err != nil {
				t.Fatal(err)
			}
		}
		return sw
	}
	lists := map[string]string{}
	tpms := map[string]*tpmtest.Swtpm{}

	// intactd: the daemon's measurer, fed what the engine measures.
	sw := booted()
	dir := t.TempDir()
	m, err := openMeasurer(dir, sw.Spec(), pcr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("#!/bin/sh\necho measured\n"))
	if err := m.Measure(enforce.Measurement{PCR: pcr, Template: mlog.TemplateIMANG, Path: file, Algo: digest.SHA256, Digest: sum[:]}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	lists["intactd"], tpms["intactd"] = filepath.Join(dir, measurementList), sw

	// The attestation agent (intact-agent measure).
	sw = booted()
	tp, err := tpm.Open(sw.Spec())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "list")
	am, err := agent.OpenMeasurer(tp, path, pcr)
	if err != nil {
		t.Fatal(err)
	}
	if err := am.MeasureFile(file); err != nil {
		t.Fatal(err)
	}
	am.Close()
	tp.Close()
	lists["agent"], tpms["agent"] = path, sw

	// intact measure.
	sw = booted()
	path = filepath.Join(t.TempDir(), "list")
	if out, err := exec.Command(filepath.Join(bin, "intact"), "measure", "--log", path, "--tpm", sw.Spec(), "--pcr", "13", file).CombinedOutput(); err != nil {
		t.Fatalf("intact measure: %v\n%s", err, out)
	}
	lists["intact measure"], tpms["intact measure"] = path, sw

	bootID, err := mlog.KernelBootID()
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for _, who := range []string{"intactd", "agent", "intact measure"} {
		raw, err := os.ReadFile(lists[who])
		if err != nil {
			t.Fatal(err)
		}
		l, err := mlog.ParseBinary(raw, mlog.Options{})
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		recs := l.UnverifiedRecords()
		if len(recs) != 3 {
			t.Fatalf("%s: %d records, want boot_aggregate, boot id and the file", who, len(recs))
		}
		// The boot_aggregate matches the TPM's boot PCRs, the list its
		// PCR.
		tp, err := tpm.Open(tpms[who].Spec())
		if err != nil {
			t.Fatal(err)
		}
		pcrs, err := tp.ReadAllPCRs()
		tp.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.CheckBootAggregate(pcrs); err != nil {
			t.Errorf("%s: %v", who, err)
		}
		if v, err := l.Replay(digest.PCRs{digest.SHA256: {pcr: pcrs[digest.SHA256][pcr]}}); err != nil || len(v.Records) != 3 {
			t.Errorf("%s: replay against the tpm: %v", who, err)
		}
		if !mlog.IsBootRecord(1, &recs[1]) || !bytes.Contains(recs[1].Data, bootID) {
			t.Errorf("%s: record 1 is not the boot id %s", who, bootID)
		}
		if name, _ := recs[2].Name(); name != file {
			t.Errorf("%s: record 2 is %q, want %s", who, name, file)
		}
		if first == nil {
			first = raw
		} else if !bytes.Equal(raw, first) {
			t.Errorf("%s's list differs from intactd's", who)
		}
	}
}
