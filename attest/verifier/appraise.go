// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
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
	Findings []rtpolicy.Finding // policy failures among the verified records (the first 100)
	// MoreFindings counts the failures beyond Findings.
	MoreFindings int64
	Reset        bool  // the TPM was reset (reboot) since the last quote
	Verified     int64 // records verified by this quote
}

// EvidenceAppraiser judges the attestation evidence of one agent (a
// quote, the measurement list it vouches for, the boot event log) against
// the agent's enrolled AK, its progress and its policies. It holds no
// I/O: the fetch of further list chunks is a function in the evidence.
// (Not to be confused with appraise.Appraiser, which judges one file's
// label.)
type EvidenceAppraiser struct {
	AK       *quote.AK
	Bank     digest.Algo // the bank quoted and replayed (sha256)
	LogPCR   int
	BootPCRs []int
	Policy   *rtpolicy.Compiled
	// Boot, when set, is the measured-boot policy the verified boot event
	// log must meet (at each boot's first attestation); an agent with no
	// boot log then fails it.
	Boot *bootpolicy.Compiled
	// Now is the verifier's clock at this attestation: the policy's
	// update windows that end after it are applied (zero: none).
	Now time.Time
	// MaxRecords and MaxBytes bound the list one attestation replays
	// (records and bytes fetched from the stored offset; zero: the
	// defaults DefaultMaxRecords, DefaultMaxBytes). Past them without
	// reaching the quoted PCR is a log-replay failure.
	MaxRecords, MaxBytes int64
}

// Selection is the PCR selection to quote.
func (p *EvidenceAppraiser) Selection() attest.Selection {
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
func (p *EvidenceAppraiser) Appraise(prog store.Progress, ev *Evidence, nonce []byte) (*Appraisal, error) {
	q := ev.Quote
	pcrs, err := attest.ParsePCRValues(q.PCRs)
	if err != nil {
		return nil, secErr(ReasonQuoteSelection, "%v", err)
	}
	ver, err := quote.Verify(p.AK, q.Attest, q.Signature, nonce, pcrs)
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
	w, err := p.walk(prog, ev, chunk, target)
	if err != nil {
		return nil, err
	}
	if err := p.checkBoot(&prog, w.first, ver.PCRs); err != nil {
		return nil, err
	}
	if prog.LogOffset == 0 && ev.BootLog != nil {
		if err := p.checkBootLog(&prog, ev.BootLog, ver.PCRs); err != nil {
			var se *SecurityError
			if out.Reset && errors.As(err, &se) {
				se.Reboot = true
			}
			return nil, err
		}
	}
	out.Findings, out.MoreFindings = w.findings, w.more
	out.Verified = w.end - prog.LogOffset
	prog.LogOffset = w.end
	prog.LogPCR = map[string][]byte{attest.BankName(p.Bank): bytes.Clone(target)}
	out.Progress = prog
	return out, nil
}

// Default bounds of the work one attestation does on a list (see
// EvidenceAppraiser.MaxRecords and MaxBytes).
const (
	DefaultMaxRecords = 500_000
	DefaultMaxBytes   = 64 << 20
)

// MaxFetches bounds the list requests of one attestation: an agent
// fills each chunk (up to attest.MaxLogChunk), so an honest one needs a
// few for DefaultMaxBytes; one that sends a record at a time to spin
// the verifier fails with log-replay.
const MaxFetches = 1024

// maxFindings bounds the policy findings an appraisal keeps (the others
// are counted).
const maxFindings = 100

// walked is what an appraisal's replay found: where the verified records
// end, the list's first record (when the walk started there), and the
// policy findings among the verified records.
type walked struct {
	end      int64
	first    *mlog.Record
	findings []rtpolicy.Finding
	more     int64
}

// walk replays the list from the agent's progress, chunk by chunk, with
// one mlog.Replayer, until the running value equals the quoted PCR. It
// keeps no records: each record is judged by the policy as it is
// replayed, and the findings count only if the replay reaches the quoted
// value (the records up to there are then verified); records of PCRs the
// quote does not cover are replayed but never judged. The quote may lag
// the list: records after the matching prefix are left for the next
// attestation. More than MaxRecords records, MaxBytes bytes or
// MaxFetches list requests without reaching the quoted value is a
// log-replay failure: an agent's cost per attestation never grows with
// what it sends.
func (p *EvidenceAppraiser) walk(prog store.Progress, ev *Evidence, chunk *attest.LogChunk, target []byte) (*walked, error) {
	running := prog.LogPCR[attest.BankName(p.Bank)]
	if running == nil {
		running = make([]byte, p.Bank.Size())
	}
	rp, err := mlog.NewReplayer(digest.SHA1, digest.PCRs{p.Bank: {p.LogPCR: target}},
		mlog.ReplayState{Offset: prog.LogOffset, PCRs: digest.PCRs{p.Bank: {p.LogPCR: running}}}, mlog.ReplayOptions{})
	if err != nil {
		return nil, fmt.Errorf("stored progress: %w", err)
	}
	maxRecords, maxBytes := p.MaxRecords, p.MaxBytes
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	w := &walked{}
	var records, size int64
	fetches := 0
	for !rp.Matched() {
		if chunk.Start != rp.Offset() {
			return nil, secErr(ReasonLogOffset, "list from record %d, asked for %d", chunk.Start, rp.Offset())
		}
		records += chunk.Count
		size += int64(len(chunk.Data))
		if records > maxRecords || size > maxBytes {
			return nil, secErr(ReasonLogReplay, "quoted %s pcr %d = %x: not reached within %d records (%d bytes) from record %d, more than an attestation replays (%d records, %d bytes)",
				attest.BankName(p.Bank), p.LogPCR, target, records, size, prog.LogOffset, maxRecords, maxBytes)
		}
		if chunk.Count > 0 {
			done, err := p.feed(rp, w, chunk)
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
		}
		if !chunk.More {
			return nil, secErr(ReasonLogReplay, "quoted %s pcr %d = %x: no prefix of the list's %d records from record %d on replays to it",
				attest.BankName(p.Bank), p.LogPCR, target, rp.Offset()-prog.LogOffset, prog.LogOffset)
		}
		if fetches++; fetches > MaxFetches {
			return nil, secErr(ReasonLogReplay, "quoted %s pcr %d = %x: not reached within %d list requests (%d records) from record %d, more than an attestation makes",
				attest.BankName(p.Bank), p.LogPCR, target, MaxFetches, records, prog.LogOffset)
		}
		if chunk, err = ev.More(rp.Offset()); err != nil {
			return nil, err
		}
	}
	w.end = rp.Offset()
	return w, nil
}

// feed replays a chunk's records until the quoted value is reached
// (done), judging the records the quoted PCR vouches for.
func (p *EvidenceAppraiser) feed(rp *mlog.Replayer, w *walked, chunk *attest.LogChunk) (done bool, err error) {
	list, err := mlog.ParseBinary(chunk.Data, mlog.Options{Bank: digest.SHA1})
	if err != nil {
		return false, secErr(ReasonLogMalformed, "%v", err)
	}
	if int64(list.Len()) != chunk.Count {
		return false, secErr(ReasonLogMalformed, "%d records, chunk says %d", list.Len(), chunk.Count)
	}
	recs := list.UnverifiedRecords()
	for i := range recs {
		rec := &recs[i]
		idx := rp.Offset()
		vouched, err := rp.Step(rec)
		var th *mlog.TemplateHashError
		switch {
		case errors.As(err, &th):
			name, _ := rec.Name()
			return false, secErr(ReasonLogTemplateHash, "record %d (%q): its sha1 template digest does not match its data", idx, name)
		case err != nil:
			return false, secErr(ReasonLogMalformed, "record %d: %v", idx, err)
		}
		if idx == 0 {
			c := *rec
			c.Data, c.Digest = bytes.Clone(rec.Data), bytes.Clone(rec.Digest)
			w.first = &c
		}
		if vouched { // another PCR: not covered by this quote, never judged
			if f := p.Policy.EvaluateAt(p.Now, idx, rec); f != nil {
				if len(w.findings) < maxFindings {
					w.findings = append(w.findings, *f)
				} else {
					w.more++
				}
			}
		}
		if rp.Matched() {
			return true, nil
		}
	}
	return false, nil
}

// checkBoot checks the boot_aggregate when the verified records include
// the list's first record (first, else nil): it must be a boot_aggregate
// on the list's PCR matching the quoted boot PCRs.
func (p *EvidenceAppraiser) checkBoot(prog *store.Progress, first *mlog.Record, pcrs digest.PCRs) error {
	if first == nil || len(p.BootPCRs) == 0 {
		return nil
	}
	if first.PCR != p.LogPCR {
		return secErr(ReasonBootAggregate, "the list's first record is on pcr %d, not the list's pcr %d", first.PCR, p.LogPCR)
	}
	if name, _ := first.Name(); name != mlog.BootAggregateName {
		return secErr(ReasonBootAggregate, "the list's first record is %q, not boot_aggregate", name)
	}
	// Only the quoted bank's values are given: a boot_aggregate of
	// another bank cannot be checked, and fails.
	if _, err := first.CheckBootAggregate(digest.PCRs{p.Bank: pcrs[p.Bank]}); err != nil {
		return secErr(ReasonBootAggregate, "%v (the %s bank is quoted)", err, attest.BankName(p.Bank))
	}
	prog.BootChecked = true
	return nil
}

// checkBootLog replays the boot event log against the quoted boot PCRs.
func (p *EvidenceAppraiser) checkBootLog(prog *store.Progress, fetch func() ([]byte, error), pcrs digest.PCRs) error {
	raw, err := fetch()
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		if p.Boot != nil {
			return secErr(ReasonBootPolicy, "the agent serves no boot event log, and its policy requires a measured boot")
		}
		prog.BootLog = store.BootLogNone
		return nil
	}
	l, err := eventlog.Parse(raw)
	if err != nil {
		return secErr(ReasonBootLog, "%v", err)
	}
	trusted := map[int][]byte{}
	for _, i := range p.BootPCRs {
		if v, ok := pcrs[p.Bank][i]; ok {
			trusted[i] = v
		}
	}
	events, err := l.Verify(digest.PCRs{p.Bank: trusted})
	if err != nil {
		return secErr(ReasonBootLog, "%v", err)
	}
	prog.BootLog = store.BootLogVerified
	if p.Boot != nil {
		if err := judgeBoot(p.Boot, p, events); err != nil {
			return err
		}
		prog.BootLog = store.BootLogJudged
	}
	return nil
}

// findingReasons renders findings (and more not kept) as failure
// reasons naming the files.
func findingReasons(fs []rtpolicy.Finding, more int64) []string {
	const max = 20
	var out []string
	for i, f := range fs {
		if i == max {
			out = append(out, fmt.Sprintf("%s: and %d more", ReasonPolicy, int64(len(fs)-max)+more))
			break
		}
		out = append(out, fmt.Sprintf("%s: %s: %s (record %d, %s)", ReasonPolicy, f.Path, f.Reason, f.Index, f.Digest))
	}
	return out
}
