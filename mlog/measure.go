// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
)

// TPM is what a Measurer needs of a TPM: its allocated PCR banks (each
// record extends all of them), extending a PCR in every bank at once,
// and reading PCRs (the boot PCRs for the boot_aggregate, the list's PCR
// for recovery). *tpm.TPM satisfies it.
type TPM interface {
	BankHashes() ([]crypto.Hash, error)
	ExtendPCR(pcr int, digests map[crypto.Hash][]byte) error
	ReadPCRs(bank crypto.Hash, pcrs []int) (map[int][]byte, error)
}

// DefaultPCR is the PCR intact extends by default: not 10, which a kernel
// IMA may be extending at the same time (see docs/measurement.md).
const DefaultPCR = 13

// Errors of a Measurer.
var (
	// ErrDiverged: the list and the TPM disagree in a way a crash cannot
	// explain (the PCR was extended by someone else, the list was changed,
	// or the list is from another boot).
	ErrDiverged = errors.New("measurement list and pcr have diverged")
	// ErrBroken: an extend failed after its record was written; reopen the
	// list to recover.
	ErrBroken = errors.New("measurement list writer is broken by an earlier failure")
)

// MeasureOptions configure a Measurer.
type MeasureOptions struct {
	// PCR is the PCR records extend (DefaultPCR if zero; PCR 0 cannot be
	// chosen, the firmware owns it).
	PCR int
	// Boot identifies this boot; nil: the kernel's random boot id
	// (KernelBootID). A new list's second record, an ima-buf record named
	// BootRecordName, holds it, and a list whose boot record holds another
	// value is refused: it was made in another boot, and its PCR was
	// reset since.
	Boot []byte
}

// BootRecordName is the name of the ima-buf record holding the boot id,
// the second record of a list a Measurer starts.
const BootRecordName = "intact-boot"

// bootIDFile is the kernel's random id of this boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// KernelBootID returns the kernel's random id of this boot
// (/proc/sys/kernel/random/boot_id, without its newline).
func KernelBootID() ([]byte, error) {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return nil, fmt.Errorf("reading the boot id: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("reading the boot id: %s is empty", bootIDFile)
	}
	return b, nil
}

// Measurer owns a measurement list's life: it opens a list or creates
// one, starts a new list as the kernel's IMA does, appends records and
// extends each into a PCR. intactd, the attestation agent and "intact
// measure" all write their lists with it, so their lists have the same
// shape:
//
//   - record 0: boot_aggregate (ima-ng, the list's PCR) over the boot
//     PCRs 0-9 of the SHA-256 bank (SHA-1 PCRs 0-7 if the TPM has no
//     SHA-256 bank), as the kernel's list starts; the verifier checks it
//     against the quoted boot PCRs;
//   - record 1: the boot id (ima-buf, BootRecordName), so that a list
//     from another boot is refused when it is opened;
//   - then one record per Append.
//
// The list is a binary measurement list file (SHA-1 template digests,
// little-endian: the layout of the kernel's
// binary_runtime_measurements). A Measurer is safe for concurrent use,
// and processes sharing a list serialize on an exclusive flock(2) of the
// file.
//
// # Order and crash consistency
//
// A record is written and fsynced before its PCR is extended. A crash
// between the two leaves the list one record ahead of the PCR, which
// recovery detects and completes; the other order could leave the PCR
// holding a measurement the list lost, which no replay could ever match.
// A crash while writing can leave a partial record at the end of the
// file; before anything else is written, the partial tail is cut off.
type Measurer struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	tpm    TPM
	pcr    int
	banks  []digest.Algo
	hashes []crypto.Hash
	end    int64 // end of the last whole record
	broken error
	boot   []byte
}

// OpenMeasurer opens (creating it, mode 0600) the list at path for
// appending, and reconciles it with the TPM: a partial record at the end
// is cut off, and a record whose extend was interrupted by a crash is
// extended now. It fails with ErrDiverged if the list holds another
// boot's id, or if the PCR matches neither the list nor the list without
// its last record of that PCR. An empty list is started with its
// boot_aggregate and boot id records (see Measurer).
func OpenMeasurer(path string, tpm TPM, opts MeasureOptions) (*Measurer, error) {
	if opts.PCR == 0 {
		opts.PCR = DefaultPCR
	}
	if opts.PCR < 1 || opts.PCR >= NumPCRs {
		return nil, fmt.Errorf("pcr %d out of range 1..%d", opts.PCR, NumPCRs-1)
	}
	hashes, err := tpm.BankHashes()
	if err != nil {
		return nil, err
	}
	if len(hashes) == 0 {
		return nil, errors.New("no pcr banks to extend")
	}
	if opts.Boot == nil {
		if opts.Boot, err = KernelBootID(); err != nil {
			return nil, err
		}
	}
	if len(opts.Boot) == 0 {
		return nil, errors.New("empty boot id")
	}
	a := &Measurer{path: path, tpm: tpm, pcr: opts.PCR, hashes: hashes, boot: opts.Boot}
	for _, h := range hashes {
		algo, ok := digest.AlgoFor(h)
		if !ok || !h.Available() {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedBank, h)
		}
		a.banks = append(a.banks, algo)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	a.f = f
	if err := a.withLock(a.recover); err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the list file.
func (a *Measurer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}

// PCR returns the PCR the measurer extends.
func (a *Measurer) PCR() int { return a.pcr }

func (a *Measurer) withLock(fn func() error) error {
	if err := unix.Flock(int(a.f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("%s: lock: %w", a.path, err)
	}
	defer unix.Flock(int(a.f.Fd()), unix.LOCK_UN)
	return fn()
}

// readTail reads the whole records after a.end, cutting off a partial
// record at the end of the file. It returns the list of the new records.
func (a *Measurer) readTail() (*List, error) {
	fi, err := a.f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size()-a.end)
	if _, err := a.f.ReadAt(b, a.end); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", a.path, err)
	}
	l := NewList(Options{})
	off := 0
	for off < len(b) {
		r, n, perr := parseRecord(b[off:], binary.LittleEndian, l.bank.Size())
		if perr != nil {
			if !partial(b[off:]) {
				perr.Offset += a.end + int64(off)
				perr.Record = l.Len()
				perr.File = a.path
				return nil, perr
			}
			// A partial record left by a crash: cut it off.
			if err := a.f.Truncate(a.end + int64(off)); err != nil {
				return nil, fmt.Errorf("%s: cutting off a partial record: %w", a.path, err)
			}
			if err := a.f.Sync(); err != nil {
				return nil, err
			}
			break
		}
		l.records = append(l.records, r)
		off += n
	}
	a.end += int64(off)
	return l, nil
}

// partial reports whether b is the start of a record cut short: every
// length it holds is plausible and only the end of the data is missing.
func partial(b []byte) bool {
	const dsize = 20
	head := 4 + dsize + 4
	if len(b) < head {
		return len(b) < 4 || binary.LittleEndian.Uint32(b) < NumPCRs
	}
	if binary.LittleEndian.Uint32(b) >= NumPCRs {
		return false
	}
	nlen := binary.LittleEndian.Uint32(b[4+dsize:])
	if nlen == 0 || nlen > maxTemplateName {
		return false
	}
	rest := b[head:]
	if uint64(len(rest)) < uint64(nlen)+4 {
		return true
	}
	dlen := binary.LittleEndian.Uint32(rest[nlen:])
	return dlen <= maxTemplateData && uint64(len(rest))-uint64(nlen)-4 < uint64(dlen)
}

// recover reads the list and reconciles it with the PCR, and starts a new
// list: its boot_aggregate, then its boot record. A list that holds only
// its boot_aggregate (a crash between the two, or a list started before
// lists had boot records) gets its boot record now.
func (a *Measurer) recover() error {
	a.end = 0
	l, err := a.readTail()
	if err != nil {
		return err
	}
	if err := a.checkBoot(l); err != nil {
		return err
	}
	if err := a.reconcile(l); err != nil {
		return err
	}
	switch {
	case l.Len() == 0:
		r, err := a.bootAggregate()
		if err != nil {
			return err
		}
		if err := a.write(&r); err != nil {
			return err
		}
		fallthrough
	case l.Len() == 1 && isBootAggregate(&l.records[0]):
		r, err := NewBufferRecord(a.pcr, BootRecordName, a.boot, digest.SHA1)
		if err != nil {
			return err
		}
		return a.write(&r)
	}
	return nil
}

// IsBootRecord reports whether r, the list's record number index, is the
// boot id record a Measurer starts a list with: an ima-buf record named
// BootRecordName at index 1 (after the boot_aggregate), or 0 in lists
// written before lists started with a boot_aggregate. It measures no
// file: runtime policies leave it out, as they leave the boot_aggregate
// to the verifier. The same record anywhere else is an ordinary one.
func IsBootRecord(index int64, r *Record) bool {
	if index > 1 || r.Template != TemplateIMABuf {
		return false
	}
	name, _ := r.Name()
	return name == BootRecordName
}

func isBootAggregate(r *Record) bool {
	name, _ := r.Name()
	return name == BootAggregateName
}

// bootAggregate builds the boot_aggregate record from the TPM's boot
// PCRs: the SHA-256 bank's if the TPM has one, else the SHA-1 bank's (the
// kernel's choice when its ima_hash has no bank).
func (a *Measurer) bootAggregate() (Record, error) {
	bank, h := digest.SHA1, crypto.SHA1
	if slices.Contains(a.hashes, crypto.SHA256) {
		bank, h = digest.SHA256, crypto.SHA256
	}
	vals, err := a.tpm.ReadPCRs(h, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		return Record{}, fmt.Errorf("reading the boot pcrs: %w", err)
	}
	ba, err := BootAggregate(bank, vals)
	if err != nil {
		return Record{}, err
	}
	return NewRecord(a.pcr, TemplateIMANG, FileMeasurement{Algo: bank, Digest: ba, Path: BootAggregateName}, digest.SHA1)
}

// checkBoot refuses a list whose boot record names another boot. The
// boot record is the list's second record (after its boot_aggregate), or
// its first in lists "intact measure" wrote before lists started with a
// boot_aggregate; a list without one is left to the PCR check alone.
func (a *Measurer) checkBoot(l *List) error {
	for i := 0; i < 2 && i < l.Len(); i++ {
		r := &l.records[i]
		name, _ := r.Name()
		f, ok := r.field("buf")
		if r.Template != TemplateIMABuf || name != BootRecordName || !ok {
			continue
		}
		if !bytes.Equal(f.Data, a.boot) {
			return fmt.Errorf("%w: %s was made in another boot (boot id %q, now %q)", ErrDiverged, a.path, f.Data, a.boot)
		}
		return nil
	}
	return nil
}

// reconcile checks the list against the PCR and finishes an extend that a
// crash interrupted.
func (a *Measurer) reconcile(l *List) error {
	want := digest.PCRs{}
	for i, h := range a.hashes {
		v, err := a.tpm.ReadPCRs(h, []int{a.pcr})
		if err != nil {
			return fmt.Errorf("reading pcr %d: %w", a.pcr, err)
		}
		want[a.banks[i]] = map[int][]byte{a.pcr: v[a.pcr]}
	}
	got, err := l.Compute(a.banks...)
	if err != nil {
		return fmt.Errorf("%s: %w", a.path, err)
	}
	if pcrsEqual(got, want, a.pcr, a.banks) {
		return nil
	}
	last := -1
	for i, r := range l.records {
		if r.PCR == a.pcr {
			last = i
		}
	}
	if last >= 0 {
		prev := &List{bank: l.bank, records: append(l.records[:last:last], l.records[last+1:]...)}
		got, err := prev.Compute(a.banks...)
		if err != nil {
			return err
		}
		if pcrsEqual(got, want, a.pcr, a.banks) {
			// The crash came between the write and the extend: finish it.
			return a.extend(&l.records[last])
		}
	}
	return fmt.Errorf("%w: %s (%d records) does not replay to the %s pcr %d of the tpm, nor does it without its last record; was the list made in another boot?",
		ErrDiverged, a.path, l.Len(), a.banks[0], a.pcr)
}

func pcrsEqual(got, want digest.PCRs, pcr int, banks []digest.Algo) bool {
	for _, b := range banks {
		g := got[b][pcr]
		if g == nil {
			g = make([]byte, b.Size())
		}
		if !bytes.Equal(g, want[b][pcr]) {
			return false
		}
	}
	return true
}

func (a *Measurer) extend(r *Record) error {
	digests := make(map[crypto.Hash][]byte, len(a.banks))
	for i, b := range a.banks {
		d, err := r.ExtendDigest(b)
		if err != nil {
			return err
		}
		digests[a.hashes[i]] = d
	}
	if err := a.tpm.ExtendPCR(r.PCR, digests); err != nil {
		return fmt.Errorf("extending pcr %d: %w", r.PCR, err)
	}
	return nil
}

// Append measures a file: it builds a record of template (ima-ng or
// ima-sig) for m, writes it to the list and extends it into the PCR, and
// returns the record. The list is synced before the extend.
func (a *Measurer) Append(template string, m FileMeasurement) (Record, error) {
	r, err := NewRecord(a.pcr, template, m, digest.SHA1)
	if err != nil {
		return Record{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBroken, a.broken)
	}
	err = a.withLock(func() error {
		// Another process may have appended since: take up its records,
		// and check that it extended them (or finish its extend).
		tail, err := a.readTail()
		if err != nil {
			return err
		}
		if tail.Len() > 0 {
			if err := a.recover(); err != nil {
				return err
			}
		}
		return a.write(&r)
	})
	if err != nil {
		return Record{}, err
	}
	return r, nil
}

// write appends r to the file, syncs it, then extends the PCR. The caller
// holds the lock.
func (a *Measurer) write(r *Record) error {
	b := r.AppendBinary(nil)
	if _, err := a.f.Write(b); err != nil {
		// Whatever part of b reached the file is cut off next time.
		return fmt.Errorf("%s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", a.path, err)
	}
	a.end += int64(len(b))
	if err := a.extend(r); err != nil {
		a.broken = err
		return err
	}
	return nil
}
