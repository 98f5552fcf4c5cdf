// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"errors"
	"fmt"

	"github.com/intactsec/intact/digest"
)

// BootAggregateName is the name of the first record of a kernel list.
const BootAggregateName = "boot_aggregate"

// BootAggregate computes the boot_aggregate digest as the kernel does
// (ima_calc_boot_aggregate): the hash, in the bank's algorithm, of PCRs
// 0–7 for SHA-1 and of PCRs 0–9 for every other bank, each PCR at its
// full size. pcrs holds the bank's PCR values by index.
func BootAggregate(bank digest.Algo, pcrs map[int][]byte) ([]byte, error) {
	h, err := bankHash(bank)
	if err != nil {
		return nil, err
	}
	last := 9
	if bank == digest.SHA1 {
		last = 7
	}
	for i := 0; i <= last; i++ {
		v, ok := pcrs[i]
		if !ok {
			return nil, fmt.Errorf("boot_aggregate: no %s pcr %d", bank, i)
		}
		if len(v) != h.Size() {
			return nil, fmt.Errorf("boot_aggregate: %s pcr %d has %d bytes, want %d", bank, i, len(v), h.Size())
		}
		h.Write(v)
	}
	return h.Sum(nil), nil
}

// ErrBootAggregate is returned when a list's boot_aggregate does not match
// the boot PCRs.
var ErrBootAggregate = errors.New("boot_aggregate does not match the boot pcrs")

// CheckBootAggregate checks the list's last boot_aggregate record (kexec
// adds one per boot) against trusted boot PCR values of the bank named in
// the record's digest. Only a digest that differs is ErrBootAggregate;
// missing PCRs or an unknown algorithm are other errors. The kernel's choice of bank is its ima_hash
// algorithm if a TPM bank has it, else SHA-256, else SHA-1: the record
// names the algorithm, so the matching values must be in pcrs.
func (l *List) CheckBootAggregate(pcrs digest.PCRs) error {
	idx := -1
	for i := range l.records {
		if name, ok := l.records[i].Name(); ok && name == BootAggregateName {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("%w: the list has no boot_aggregate record", ErrBootAggregate)
	}
	if _, err := l.records[idx].CheckBootAggregate(pcrs); err != nil {
		return fmt.Errorf("boot_aggregate record %d: %w", idx, err)
	}
	return nil
}

// CheckBootAggregate checks a boot_aggregate record against trusted boot
// PCR values: its digest must be the BootAggregate of the boot PCRs of the
// bank the digest names, whose values must be in pcrs. It returns that
// bank. This is the one boot_aggregate check: List.CheckBootAggregate
// (intact log replay) and the verifier (the quoted boot PCRs) both use
// it. Only a digest that differs is ErrBootAggregate; a record that is
// not a boot_aggregate, an unknown algorithm or missing PCRs are other
// errors.
func (r *Record) CheckBootAggregate(pcrs digest.PCRs) (digest.Algo, error) {
	if name, _ := r.Name(); name != BootAggregateName {
		return 0, fmt.Errorf("record %q is not a boot_aggregate", name)
	}
	algoName, sum, ok := r.FileDigest()
	if !ok {
		return 0, errors.New("no digest field")
	}
	bank, err := digest.ParseAlgo(algoName)
	if err != nil {
		return 0, err
	}
	want, err := BootAggregate(bank, pcrs[bank])
	if err != nil {
		return bank, err
	}
	if string(want) != string(sum) {
		return bank, fmt.Errorf("%w: the record holds %s:%x, the pcrs give %x", ErrBootAggregate, bank, sum, want)
	}
	return bank, nil
}
