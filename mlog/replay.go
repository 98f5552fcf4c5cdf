// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"slices"

	"github.com/intactsec/intact/digest"
)

// ReplayOptions change how the banks other than the list's own are
// replayed.
type ReplayOptions struct {
	// SHA1Padded replays as kernels before 5.8 extended: every bank with
	// the SHA-1 template digest zero-padded (or cut) to the bank's size,
	// and a violation as 20 bytes of 0xff then zeros. The list must be a
	// SHA-1 list.
	SHA1Padded bool
}

// bankState is a simulated PCR bank.
type bankState struct {
	bank   digest.Algo
	own    bool // the list's own bank: stored digests are checked and extended
	padded bool // extend the SHA-1 stored digest, padded (ReplayOptions.SHA1Padded)
	h      hash.Hash
	pcr    [NumPCRs][]byte
	d      []byte // scratch: the template digest
	ffs    []byte
}

func newBankState(bank, listBank digest.Algo, opts ReplayOptions) (*bankState, error) {
	h, err := bankHash(bank)
	if err != nil {
		return nil, err
	}
	s := &bankState{bank: bank, own: bank == listBank, h: h, ffs: ff(h.Size())}
	if opts.SHA1Padded && !s.own {
		if listBank != digest.SHA1 {
			return nil, fmt.Errorf("sha1-padded replay needs a sha1 list, not %s", listBank)
		}
		s.padded = true
		s.ffs = make([]byte, h.Size())
		copy(s.ffs, ff(20))
	}
	for i := range s.pcr {
		s.pcr[i] = make([]byte, h.Size())
	}
	s.d = make([]byte, 0, h.Size())
	return s, nil
}

// step extends r into its PCR and reports whether the stored template
// digest (own bank only) does not match the template data.
func (s *bankState) step(r *Record) (badHash bool, err error) {
	var ext []byte
	switch {
	case r.Violation():
		ext = s.ffs
	case s.padded:
		s.d = s.d[:s.h.Size()]
		clear(s.d)
		copy(s.d, r.Digest)
		ext = s.d
	default:
		s.h.Reset()
		if err := r.writeTemplate(s.h); err != nil {
			return false, err
		}
		s.d = s.h.Sum(s.d[:0])
		ext = s.d
		if s.own {
			badHash = !bytes.Equal(s.d, r.Digest)
			ext = r.Digest // what the kernel extended
		}
	}
	p := s.pcr[r.PCR]
	s.h.Reset()
	s.h.Write(p)
	s.h.Write(ext)
	s.h.Sum(p[:0])
	return badHash, nil
}

// Compute replays every record and returns, for each bank, the value of
// each PCR the list extends. Nothing is verified: these are the values the
// list claims. With no banks given, the list's own bank is used.
func (l *List) Compute(banks ...digest.Algo) (digest.PCRs, error) {
	return l.ComputeWith(ReplayOptions{}, banks...)
}

// ComputeWith is Compute with options.
func (l *List) ComputeWith(opts ReplayOptions, banks ...digest.Algo) (digest.PCRs, error) {
	if len(banks) == 0 {
		banks = []digest.Algo{l.bank}
	}
	out := digest.PCRs{}
	for _, bank := range banks {
		s, err := newBankState(bank, l.bank, opts)
		if err != nil {
			return nil, err
		}
		var used [NumPCRs]bool
		for i := range l.records {
			if _, err := s.step(&l.records[i]); err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			used[l.records[i].PCR] = true
		}
		vals := map[int][]byte{}
		for i, u := range used {
			if u {
				vals[i] = s.pcr[i]
			}
		}
		out[bank] = vals
	}
	return out, nil
}

// CheckTemplateDigests checks every record's stored template digest
// against its data and returns the first mismatch as *TemplateHashError.
func (l *List) CheckTemplateDigests() error {
	s, err := newBankState(l.bank, l.bank, ReplayOptions{})
	if err != nil {
		return err
	}
	return l.checkDigests(s, len(l.records))
}

func (l *List) checkDigests(s *bankState, n int) error {
	for i := range l.records[:n] {
		r := &l.records[i]
		bad, err := s.step(r)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if bad {
			return &TemplateHashError{Record: i, Bank: l.bank, Stored: r.Digest, Want: bytes.Clone(s.d)}
		}
	}
	return nil
}

// Verified is the result of a successful replay.
type Verified struct {
	// Records are the records the trusted PCR values vouch for: those of
	// the matched prefix whose PCR has a trusted value, in list order.
	// The slice may share memory with the list; do not modify it.
	Records []Record
	// Prefix is the number of records the PCRs matched after; the records
	// after it were appended after the PCRs were read (or quoted) and are
	// not verified.
	Prefix int
	// PrefixByBank is the matched prefix of each bank.
	PrefixByBank map[digest.Algo]int
}

// Replay replays the list against trusted PCR values, bank by bank. In
// each bank it looks for the first prefix of the list after which every
// given PCR has its trusted value (a quote may lag the list, which only
// grows). Every bank must match, and every stored template digest in the
// matched prefix must match its data. On success it returns the records
// the PCRs vouch for; otherwise a *ReplayError (or an error about the
// input). Violations are replayed as the kernel extends them (all 0xff).
func (l *List) Replay(trusted digest.PCRs) (*Verified, error) {
	return l.ReplayWith(trusted, ReplayOptions{})
}

// ReplayWith is Replay with options.
func (l *List) ReplayWith(trusted digest.PCRs, opts ReplayOptions) (*Verified, error) {
	if len(trusted) == 0 {
		return nil, fmt.Errorf("no trusted pcr values to replay against")
	}
	banks := make([]digest.Algo, 0, len(trusted))
	for b := range trusted {
		banks = append(banks, b)
	}
	slices.Sort(banks)
	v := &Verified{Prefix: len(l.records), PrefixByBank: map[digest.Algo]int{}}
	rerr := &ReplayError{}
	ownChecked := false // the own bank's replay checked the digests of its prefix
	for _, bank := range banks {
		n, mism, bad, err := l.replayBank(bank, trusted[bank], opts)
		if err != nil {
			return nil, err
		}
		if bad != nil {
			return nil, bad
		}
		if bank == l.bank && mism == nil {
			ownChecked = true
		}
		if mism != nil {
			rerr.Mismatches = append(rerr.Mismatches, mism...)
			continue
		}
		v.PrefixByBank[bank] = n
		v.Prefix = min(v.Prefix, n)
	}
	if len(rerr.Mismatches) > 0 {
		if err := l.CheckTemplateDigests(); err != nil {
			if th, ok := err.(*TemplateHashError); ok {
				rerr.TemplateHash = th
			}
		}
		return nil, rerr
	}
	if !ownChecked {
		own, err := newBankState(l.bank, l.bank, ReplayOptions{})
		if err != nil {
			return nil, err
		}
		if err := l.checkDigests(own, v.Prefix); err != nil {
			return nil, err
		}
	}
	var vouched [NumPCRs]bool
	for _, bank := range banks {
		for pcr := range trusted[bank] {
			vouched[pcr] = true
		}
	}
	prefix := l.records[:v.Prefix:v.Prefix]
	if !slices.ContainsFunc(prefix, func(r Record) bool { return !vouched[r.PCR] }) {
		v.Records = prefix // the common case: one PCR, every record vouched for
		return v, nil
	}
	for _, r := range prefix {
		if vouched[r.PCR] {
			v.Records = append(v.Records, r)
		}
	}
	return v, nil
}

// replayBank finds the first prefix after which every PCR in want holds
// its value, or returns the mismatches. In the list's own bank it also
// returns the first record of the matched prefix whose stored digest does
// not match its data. It replays with a Replayer, as the verifier does.
func (l *List) replayBank(bank digest.Algo, want map[int][]byte, opts ReplayOptions) (n int, mism []*MismatchError, bad *TemplateHashError, err error) {
	rp, err := NewReplayer(l.bank, digest.PCRs{bank: want}, ReplayState{}, opts)
	if err != nil {
		return 0, nil, nil, err
	}
	rp.own = bank == l.bank // the other banks' replays leave the digests to ReplayWith
	if rp.Matched() {
		return 0, nil, nil, nil
	}
	for i := range l.records {
		_, err := rp.Step(&l.records[i])
		var th *TemplateHashError
		switch {
		case errors.As(err, &th):
			if bad == nil {
				bad = th
			}
		case err != nil:
			return 0, nil, nil, fmt.Errorf("record %d: %w", i, err)
		}
		if rp.Matched() {
			return i + 1, nil, bad, nil
		}
	}
	pcrs := make([]int, 0, len(want))
	for pcr := range want {
		pcrs = append(pcrs, pcr)
	}
	slices.Sort(pcrs)
	for _, pcr := range pcrs {
		got := rp.Value(bank, pcr)
		if bytes.Equal(got, want[pcr]) {
			continue
		}
		from := slices.IndexFunc(l.records, func(r Record) bool { return r.PCR == pcr })
		mism = append(mism, &MismatchError{Bank: bank, PCR: pcr, Want: want[pcr], Got: bytes.Clone(got), From: from, Records: len(l.records)})
	}
	return 0, mism, nil, nil
}

// ReplayState is where an incremental replay stands: how many records
// were replayed, and the running value of PCRs by bank (a PCR not given
// starts at zero).
type ReplayState struct {
	Offset int64
	PCRs   digest.PCRs
}

// Replayer replays a measurement list incrementally, one record at a
// time, against trusted PCR values (a quote's): the verifier feeds it
// the records of each chunk it fetches, from where the last attestation
// stopped, and List.Replay feeds it a whole list, bank by bank. It holds
// no records: its memory does not grow with the list.
//
// A record is vouched for by the trusted values only if its PCR is one
// of them (Step reports it) and only once every trusted PCR holds its
// value after it (Matched). Records of other PCRs are replayed (their
// running values kept) but the trusted values say nothing of them:
// callers must not evaluate them.
type Replayer struct {
	listBank digest.Algo
	banks    []*bankState
	wanted   [][NumPCRs][]byte // by bank, as banks
	nwant    int
	matching int
	vouched  [NumPCRs]bool
	check    bool // check the stored digests apart: the list's bank is not replayed
	own      bool // check the stored template digests (default)
	offset   int64
}

// NewReplayer returns a replayer of a list in listBank (the bank of its
// stored template digests) against trusted, starting from from.
func NewReplayer(listBank digest.Algo, trusted digest.PCRs, from ReplayState, opts ReplayOptions) (*Replayer, error) {
	if len(trusted) == 0 {
		return nil, fmt.Errorf("no trusted pcr values to replay against")
	}
	if from.Offset < 0 {
		return nil, fmt.Errorf("replay from record %d", from.Offset)
	}
	banks := make([]digest.Algo, 0, len(trusted))
	for b := range trusted {
		banks = append(banks, b)
	}
	slices.Sort(banks)
	p := &Replayer{listBank: listBank, own: true, offset: from.Offset}
	hasOwn := false
	for _, bank := range banks {
		s, err := newBankState(bank, listBank, opts)
		if err != nil {
			return nil, err
		}
		hasOwn = hasOwn || s.own
		for pcr, val := range from.PCRs[bank] {
			if pcr < 0 || pcr >= NumPCRs || len(val) != s.h.Size() {
				return nil, fmt.Errorf("running %s pcr %d: %d bytes, want %d", bank, pcr, len(val), s.h.Size())
			}
			copy(s.pcr[pcr], val)
		}
		var w [NumPCRs][]byte
		for pcr, val := range trusted[bank] {
			if pcr < 0 || pcr >= NumPCRs {
				return nil, fmt.Errorf("trusted pcr index %d out of range", pcr)
			}
			if len(val) != s.h.Size() {
				return nil, fmt.Errorf("trusted %s pcr %d: %d bytes, want %d", bank, pcr, len(val), s.h.Size())
			}
			w[pcr] = val
			p.vouched[pcr] = true
			p.nwant++
			if bytes.Equal(s.pcr[pcr], val) {
				p.matching++
			}
		}
		p.banks = append(p.banks, s)
		p.wanted = append(p.wanted, w)
	}
	if !hasOwn {
		if _, err := bankHash(listBank); err != nil {
			return nil, err
		}
		p.check = true
	}
	return p, nil
}

// Step replays the next record and reports whether its PCR is a trusted
// one (the record is vouched for once Matched holds after it). A record
// whose stored template digest does not match its data is replayed and
// reported as a *TemplateHashError (Record is its index in the list);
// other errors leave the replayer unusable.
func (p *Replayer) Step(r *Record) (vouched bool, err error) {
	if r.PCR < 0 || r.PCR >= NumPCRs {
		return false, fmt.Errorf("pcr %d out of range", r.PCR)
	}
	var bad *TemplateHashError
	for i, s := range p.banks {
		w := p.wanted[i][r.PCR]
		was := w != nil && bytes.Equal(s.pcr[r.PCR], w)
		badHash, err := s.step(r)
		if err != nil {
			return false, err
		}
		if badHash && p.own && bad == nil {
			bad = &TemplateHashError{Record: int(p.offset), Bank: p.listBank, Stored: r.Digest, Want: bytes.Clone(s.d)}
		}
		if w == nil {
			continue
		}
		now := bytes.Equal(s.pcr[r.PCR], w)
		switch {
		case was && !now:
			p.matching--
		case !was && now:
			p.matching++
		}
	}
	if p.check && p.own && !r.Violation() {
		if err := r.CheckTemplateDigest(p.listBank); err != nil {
			var th *TemplateHashError
			if !errors.As(err, &th) {
				return false, err
			}
			th.Record = int(p.offset)
			bad = th
		}
	}
	p.offset++
	if bad != nil {
		return p.vouched[r.PCR], bad
	}
	return p.vouched[r.PCR], nil
}

// Matched reports whether every trusted PCR holds its trusted value: the
// records replayed so far (on trusted PCRs) are vouched for.
func (p *Replayer) Matched() bool { return p.matching == p.nwant }

// Offset is the number of records replayed (with the starting offset).
func (p *Replayer) Offset() int64 { return p.offset }

// Value is the running value of a PCR in a replayed bank (nil if the
// bank is not replayed). It is the replayer's: clone it to keep it.
func (p *Replayer) Value(bank digest.Algo, pcr int) []byte {
	for _, s := range p.banks {
		if s.bank == bank && pcr >= 0 && pcr < NumPCRs {
			return s.pcr[pcr]
		}
	}
	return nil
}
