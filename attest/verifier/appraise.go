// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/quote"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/store"
)

// Evidence is what one attestation gathered from an agent.
type Evidence struct {
	Quote *attest.QuoteResponse
	// More fetches the list from a record offset (when the quote's chunk
	// ends before the quoted PCR, or after a reboot).
	More func(start int64) (*attest.LogChunk, error)
	// BootLog fetches the TCG boot event log; (nil, nil) when the agent
	// has none. Called once per boot, when the list is appraised from its
	// first record. Nil: not fetched.
	BootLog func() ([]byte, error)
}

// Appraisal is the outcome of a verified attestation.
type Appraisal struct {
	Progress store.Progress
	Findings []rtpolicy.Finding // policy failures among the verified records
	Reset    bool               // the TPM was reset (reboot) since the last quote
	Verified int64              // records verified by this quote
}

// Appraiser checks evidence for one agent. It holds no I/O: the fetch of
// further list chunks is a function in the evidence.
type Appraiser struct {
	AK       *quote.AK
	Bank     crypto.Hash // the bank quoted and replayed (sha256)
	LogPCR   int
	BootPCRs []int
	Policy   *rtpolicy.Compiled
	// Now is the verifier's clock at this attestation: the policy's
	// update windows that end after it are applied (zero: none).
	Now time.Time
}

// Selection is the PCR selection to quote.
func (p *Appraiser) Selection() attest.Selection {
	pcrs := append([]int(nil), p.BootPCRs...)
	found := false
	for _, x := range pcrs {
		found = found || x == p.LogPCR
	}
	if !found {
		pcrs = append(pcrs, p.LogPCR)
	}
	return attest.Selection{p.Bank: pcrs}
}

func quoteReason(err error) string {
	switch {
	case errors.Is(err, quote.ErrSignature):
		return ReasonQuoteSignature
	case errors.Is(err, quote.ErrNonce):
		return ReasonQuoteNonce
	case errors.Is(err, quote.ErrSelection):
		return ReasonQuoteSelection
	case errors.Is(err, quote.ErrPCRDigest):
		return ReasonPCRDigest
	case errors.Is(err, quote.ErrClock):
		return ReasonClock
	case errors.Is(err, quote.ErrAK):
		return ReasonAK
	}
	return ReasonQuoteMalformed
}

// Appraise verifies the evidence against the nonce sent and the agent's
// progress. It returns an Appraisal only when the quote verifies and the
// list replays to the quoted PCR; a *SecurityError when the evidence is
// inconsistent; another error for operational failures. Policy findings
// on verified records are in the Appraisal (the caller decides).
func (p *Appraiser) Appraise(prog store.Progress, ev *Evidence, nonce []byte) (*Appraisal, error) {
	q := ev.Quote
	pcrs, err := attest.ParsePCRValues(q.PCRs)
	if err != nil {
		return nil, secErr(ReasonQuoteSelection, "%v", err)
	}
	ver, err := quote.Verify(p.AK, q.Attest, q.Signature, nonce, quote.PCRValues(pcrs))
	if err != nil {
		return nil, secErr(quoteReason(err), "%v", err)
	}
	out := &Appraisal{}
	if prog.HaveClock {
		prev := quote.Clock{Clock: prog.Clock, ResetCount: prog.ResetCount, RestartCount: prog.RestartCount}
		change, err := quote.CheckClock(prev, ver.Clock)
		if err != nil {
			return nil, secErr(ReasonClock, "%v", err)
		}
		if change == quote.Reset {
			out.Reset = true
			prog = store.Progress{} // a new boot: attest afresh from its first record
		}
	}
	prog.HaveClock, prog.Clock = true, ver.Clock.Clock
	prog.ResetCount, prog.RestartCount = ver.Clock.ResetCount, ver.Clock.RestartCount

	target, ok := ver.PCRs[p.Bank][p.LogPCR]
	if !ok {
		return nil, secErr(ReasonQuoteSelection, "log pcr %d not quoted", p.LogPCR)
	}
	chunk := q.Log
	switch {
	case chunk != nil && chunk.Start == prog.LogOffset:
	case chunk != nil && !out.Reset:
		return nil, secErr(ReasonLogOffset, "list from record %d, asked for %d", chunk.Start, prog.LogOffset)
	case ev.More == nil:
		return nil, errors.New("no measurement list from the stored offset in the quote response")
	default: // no list, or the old boot's offset after a reset
		if chunk, err = ev.More(prog.LogOffset); err != nil {
			return nil, err
		}
	}
	r := replay{p: p, offset: prog.LogOffset, running: bytes.Clone(prog.LogPCR[attest.BankName(p.Bank)])}
	if r.running == nil {
		r.running = make([]byte, p.Bank.Size())
	}
	for {
		if want := r.offset + int64(len(r.verified)+len(r.pending)); chunk.Start != want {
			return nil, secErr(ReasonLogOffset, "list from record %d, asked for %d", chunk.Start, want)
		}
		done, err := r.feed(chunk, target)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if !chunk.More {
			return nil, secErr(ReasonLogReplay, "quoted %s pcr %d = %x: no prefix of the list's %d records from record %d on replays to it",
				attest.BankName(p.Bank), p.LogPCR, target, len(r.verified)+len(r.pending), r.offset)
		}
		if chunk, err = ev.More(chunk.Start + chunk.Count); err != nil {
			return nil, err
		}
	}
	if err := p.checkBoot(&prog, r.offset, r.verified, ver.PCRs); err != nil {
		return nil, err
	}
	if r.offset == 0 && ev.BootLog != nil {
		if err := p.checkBootLog(&prog, ev.BootLog, ver.PCRs); err != nil {
			return nil, err
		}
	}
	for i := range r.verified {
		if f := p.Policy.EvaluateAt(p.Now, r.offset+int64(i), &r.verified[i]); f != nil {
			out.Findings = append(out.Findings, *f)
		}
	}
	prog.LogOffset = r.offset + int64(len(r.verified))
	prog.LogPCR = map[string][]byte{attest.BankName(p.Bank): bytes.Clone(target)}
	out.Progress = prog
	out.Verified = int64(len(r.verified))
	return out, nil
}

// replay extends records into a simulated PCR until it equals the
// quoted value. The quote may lag the list: records after the matching
// prefix are left for the next attestation.
type replay struct {
	p        *Appraiser
	offset   int64 // index of the first record fed
	running  []byte
	verified []mlog.Record // records up to the matching prefix
	pending  []mlog.Record // records after the last match (not verified)
	matched  bool
}

func (r *replay) feed(chunk *attest.LogChunk, target []byte) (bool, error) {
	if !r.matched && bytes.Equal(r.running, target) && len(r.pending) == 0 {
		r.matched = true
		return true, nil
	}
	if chunk.Count == 0 {
		return false, nil
	}
	list, err := mlog.ParseBinary(chunk.Data, mlog.Options{Bank: label.SHA1})
	if err != nil {
		return false, secErr(ReasonLogMalformed, "%v", err)
	}
	if int64(list.Len()) != chunk.Count {
		return false, secErr(ReasonLogMalformed, "%d records, chunk says %d", list.Len(), chunk.Count)
	}
	bank, _ := label.HashAlgoFor(r.p.Bank)
	h := r.p.Bank.New()
	for _, rec := range list.UnverifiedRecords() {
		idx := r.offset + int64(len(r.verified)+len(r.pending))
		if err := rec.CheckTemplateDigest(label.SHA1); err != nil {
			name, _ := rec.Name()
			return false, secErr(ReasonLogTemplateHash, "record %d (%q): its sha1 template digest does not match its data", idx, name)
		}
		r.pending = append(r.pending, rec)
		if rec.PCR != r.p.LogPCR {
			continue // another PCR: not covered by this quote, not appraised
		}
		d, err := rec.ExtendDigest(bank)
		if err != nil {
			return false, secErr(ReasonLogMalformed, "record %d: %v", idx, err)
		}
		h.Reset()
		h.Write(r.running)
		h.Write(d)
		r.running = h.Sum(r.running[:0])
		if bytes.Equal(r.running, target) {
			r.verified = append(r.verified, r.pending...)
			r.pending = r.pending[:0]
			return true, nil
		}
	}
	return false, nil
}

// checkBoot checks the boot_aggregate when the verified records include
// the list's first record: it must be a boot_aggregate matching the
// quoted boot PCRs.
func (p *Appraiser) checkBoot(prog *store.Progress, offset int64, recs []mlog.Record, pcrs quote.PCRValues) error {
	if offset != 0 || len(recs) == 0 || len(p.BootPCRs) == 0 {
		return nil
	}
	first := &recs[0]
	if name, _ := first.Name(); name != mlog.BootAggregateName {
		return secErr(ReasonBootAggregate, "the list's first record is %q, not boot_aggregate", name)
	}
	algo, digest, ok := first.FileDigest()
	if !ok {
		return secErr(ReasonBootAggregate, "boot_aggregate has no digest")
	}
	bank, err := label.ParseHashAlgo(algo)
	h, _ := bank.CryptoHash()
	if err != nil || h != p.Bank {
		return secErr(ReasonBootAggregate, "boot_aggregate of %s; the %s bank is quoted", algo, attest.BankName(p.Bank))
	}
	want, err := mlog.BootAggregate(bank, pcrs[p.Bank])
	if err != nil {
		return secErr(ReasonBootAggregate, "%v", err)
	}
	if !bytes.Equal(want, digest) {
		return secErr(ReasonBootAggregate, "list has %x, quoted pcrs 0-9 give %x", digest, want)
	}
	prog.BootChecked = true
	return nil
}

// checkBootLog replays the boot event log against the quoted boot PCRs.
func (p *Appraiser) checkBootLog(prog *store.Progress, fetch func() ([]byte, error), pcrs quote.PCRValues) error {
	raw, err := fetch()
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		prog.BootLog = store.BootLogNone
		return nil
	}
	l, err := eventlog.Parse(raw)
	if err != nil {
		return secErr(ReasonBootLog, "%v", err)
	}
	bank, _ := label.HashAlgoFor(p.Bank)
	trusted := map[int][]byte{}
	for _, i := range p.BootPCRs {
		if v, ok := pcrs[p.Bank][i]; ok {
			trusted[i] = v
		}
	}
	if _, err := l.Verify(eventlog.Values{bank: trusted}); err != nil {
		return secErr(ReasonBootLog, "%v", err)
	}
	prog.BootLog = store.BootLogVerified
	return nil
}

// findingReasons renders findings as failure reasons naming the files.
func findingReasons(fs []rtpolicy.Finding) []string {
	const max = 20
	var out []string
	for i, f := range fs {
		if i == max {
			out = append(out, fmt.Sprintf("%s: and %d more", ReasonPolicy, len(fs)-max))
			break
		}
		out = append(out, fmt.Sprintf("%s: %s: %s (record %d, %s)", ReasonPolicy, f.Path, f.Reason, f.Index, f.Digest))
	}
	return out
}
