// SPDX-License-Identifier: Apache-2.0

// Package eventlog reads TCG PC Client boot event logs (the firmware's
// binary_bios_measurements, SHA-1 and crypto-agile formats), replays them
// into PCR values, and lists the boot components they record.
//
// Parsing and verification go through github.com/google/go-attestation's
// attest package, a well-kept implementation of the TCG format; this
// package adds replay without trusted values (to print what a log claims),
// a typed error model, and a component listing. (Why not
// google/go-eventlog: docs/DEVELOPING.md, "Dependencies".)
//
// A parsed [Log] is unverified. [Log.Verify] replays it against PCR values
// the caller trusts and returns only the events those values vouch for;
// [Log.UnverifiedEvents] is for display and debugging.
package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-attestation/attest"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/readfile"
)

// ErrFormat is wrapped by errors about malformed logs.
var ErrFormat = errors.New("malformed tcg event log")

// Log is a parsed, unverified TCG event log.
type Log struct {
	el    *attest.EventLog
	banks []digest.Algo
}

// The TCG event types this package interprets.
const (
	evNoAction = 0x03
)

// Parse parses a TCG event log.
func Parse(b []byte) (l *Log, err error) {
	defer func() {
		// Parsing is the library's; hold it to this package's rule that
		// no input makes it panic.
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("%w: parser failed: %v", ErrFormat, r)
		}
	}()
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty log", ErrFormat)
	}
	el, err := attest.ParseEventLog(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	l = &Log{el: el}
	for _, a := range el.Algs {
		h, ok := cryptoHashOf(a)
		if !ok {
			continue // a bank Go cannot compute (SM3): not replayed
		}
		algo, ok := digest.AlgoFor(h)
		if ok {
			l.banks = append(l.banks, algo)
		}
	}
	if len(l.banks) == 0 {
		return nil, fmt.Errorf("%w: no supported digest algorithm in the log", ErrFormat)
	}
	return l, nil
}

// ReadFile reads and parses a log file, such as
// /sys/kernel/security/tpm0/binary_bios_measurements. Errors name path.
func ReadFile(path string) (*Log, error) {
	b, err := readfile.Read(path, readfile.List)
	if err != nil {
		return nil, err
	}
	l, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

func cryptoHashOf(a attest.HashAlg) (crypto.Hash, bool) {
	switch a {
	case attest.HashSHA1:
		return crypto.SHA1, true
	case attest.HashSHA256:
		return crypto.SHA256, true
	case attest.HashSHA384:
		return crypto.SHA384, true
	case attest.HashSHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

func attestHashOf(a digest.Algo) (attest.HashAlg, crypto.Hash, bool) {
	switch a {
	case digest.SHA1:
		return attest.HashSHA1, crypto.SHA1, true
	case digest.SHA256:
		return attest.HashSHA256, crypto.SHA256, true
	case digest.SHA384:
		return attest.HashSHA384, crypto.SHA384, true
	case digest.SHA512:
		return attest.HashSHA512, crypto.SHA512, true
	}
	return 0, 0, false
}

// Banks returns the banks the log has digests for (and Go can compute).
func (l *Log) Banks() []digest.Algo { return slices.Clone(l.banks) }

// Event is one event of a log.
type Event struct {
	// Seq is the event's position in the log (from 0).
	Seq int
	PCR int
	// Type is the event type. It is not covered by the digest: trust it
	// only for display.
	Type   uint32
	Data   []byte
	Digest []byte // the event digest in the bank asked for (nil: none)
}

// UnverifiedEvents returns the events with their digests of bank, as the
// log claims them: for display and debugging only.
func (l *Log) UnverifiedEvents(bank digest.Algo) ([]Event, error) {
	a, _, ok := attestHashOf(bank)
	if !ok {
		return nil, fmt.Errorf("unsupported bank %s", bank)
	}
	var out []Event
	for i, e := range l.el.Events(a) {
		out = append(out, Event{Seq: i, PCR: e.Index, Type: uint32(e.Type), Data: e.Data, Digest: e.Digest})
	}
	return out, nil
}

// Replay computes the PCR values the log replays to in each of its banks
// (PCRs 0–23, those with events). Nothing is verified: these are the
// values the log claims. An EV_NO_ACTION "StartupLocality" event in PCR 0
// sets PCR 0's initial value to the locality, as the TPM does.
func (l *Log) Replay() (digest.PCRs, error) {
	out := digest.PCRs{}
	for _, bank := range l.banks {
		v, err := l.replayBank(bank)
		if err != nil {
			return nil, err
		}
		out[bank] = v
	}
	return out, nil
}

func (l *Log) replayBank(bank digest.Algo) (map[int][]byte, error) {
	_, h, _ := attestHashOf(bank)
	events, err := l.UnverifiedEvents(bank)
	if err != nil {
		return nil, err
	}
	pcrs := map[int][]byte{}
	for i, e := range events {
		if e.Type == evNoAction {
			// Not extended into any PCR (TCG PC Client PFP: "not
			// extended"), whatever PCR index it names: firmware writes
			// some on 0xFFFFFFFF, as go-attestation skips them. Only the
			// StartupLocality event sets PCR 0's initial value.
			if _, seen := pcrs[0]; e.PCR == 0 && len(e.Data) == 17 && bytes.HasPrefix(e.Data, []byte("StartupLocality\x00")) && !seen {
				cur := make([]byte, h.Size())
				cur[h.Size()-1] = e.Data[16]
				pcrs[0] = cur
			}
			continue
		}
		if e.PCR < 0 || e.PCR >= 24 {
			return nil, fmt.Errorf("%w: event %d: pcr index %d", ErrFormat, i, e.PCR)
		}
		cur, ok := pcrs[e.PCR]
		if !ok {
			cur = make([]byte, h.Size())
		}
		if len(e.Digest) != h.Size() {
			return nil, fmt.Errorf("%w: event %d (pcr %d) has no %s digest", ErrFormat, i, e.PCR, bank)
		}
		hh := h.New()
		hh.Write(cur)
		hh.Write(e.Digest)
		pcrs[e.PCR] = hh.Sum(nil)
	}
	return pcrs, nil
}

// ReplayError reports the PCRs of a bank the log does not replay to.
type ReplayError struct {
	Bank digest.Algo
	PCRs []int
	Err  error // the library's error
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("%s pcrs %v do not match the event log: %v", e.Bank, e.PCRs, e.Err)
}

// Verify replays the log against trusted PCR values, bank by bank (every
// bank given must match; known firmware quirks are tried, as the library
// does), and returns the events the values vouch for, with their digests
// in the first bank given. PCRs with events but no trusted value are not
// vouched for and their events are left out.
func (l *Log) Verify(trusted digest.PCRs) ([]Event, error) {
	if len(trusted) == 0 {
		return nil, errors.New("no trusted pcr values to verify against")
	}
	banks := make([]digest.Algo, 0, len(trusted))
	for b := range trusted {
		banks = append(banks, b)
	}
	slices.Sort(banks)
	var verified []Event
	for i, bank := range banks {
		_, h, ok := attestHashOf(bank)
		if !ok {
			return nil, fmt.Errorf("unsupported bank %s", bank)
		}
		var pcrs []attest.PCR
		for idx, v := range trusted[bank] {
			pcrs = append(pcrs, attest.PCR{Index: idx, Digest: v, DigestAlg: h})
		}
		events, err := l.el.Verify(pcrs)
		if err != nil {
			var re attest.ReplayError
			if errors.As(err, &re) {
				return nil, &ReplayError{Bank: bank, PCRs: re.InvalidPCRs, Err: err}
			}
			return nil, &ReplayError{Bank: bank, Err: err}
		}
		if i == 0 {
			// The verified events are a subsequence of the log's: find
			// each one's position.
			all, _ := l.UnverifiedEvents(bank)
			j := 0
			for _, e := range events {
				v := Event{Seq: -1, PCR: e.Index, Type: uint32(e.Type), Data: e.Data, Digest: e.Digest}
				for ; j < len(all); j++ {
					a := &all[j]
					if a.PCR == v.PCR && a.Type == v.Type && bytes.Equal(a.Digest, v.Digest) && bytes.Equal(a.Data, v.Data) {
						v.Seq = a.Seq
						j++
						break
					}
				}
				verified = append(verified, v)
			}
		}
	}
	return verified, nil
}
