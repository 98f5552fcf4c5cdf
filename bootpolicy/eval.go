// SPDX-License-Identifier: Apache-2.0

package bootpolicy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/intactsec/intact/eventlog"
)

// Scope is the PCRs a policy governs by default: the firmware's and boot
// loader's (0–9). Events of other PCRs are judged only when the policy
// has an entry for their PCR.
const Scope = 9

// Reasons of findings.
const (
	ReasonDigest     = "digest-not-accepted" // an event's digest is in no variant of its slot
	ReasonType       = "type-mismatch"       // an event's type differs from its slot's
	ReasonExtra      = "unexplained-event"   // an event after the policy's events of its PCR, or in a PCR it has no entry for
	ReasonMissing    = "missing-event"       // the log lacks an event of the policy
	ReasonValue      = "pcr-value"           // a PCR judged by value replays to no accepted value
	ReasonSecureBoot = "secure-boot"         // Secure Boot state not the one required
	ReasonNoSBVar    = "secure-boot-unknown" // no measured SecureBoot variable in PCR 7
)

// Finding is one way a log breaks the policy.
type Finding struct {
	PCR    int
	Seq    int // the event's position in the log (-1: the PCR as a whole)
	Type   string
	Role   string
	Label  string
	Digest string
	Reason string
	Detail string
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pcr %d", f.PCR)
	if f.Seq >= 0 {
		fmt.Fprintf(&b, " event %d (%s", f.Seq, f.Type)
		if f.Role != "" {
			b.WriteString(" " + f.Role)
		}
		if f.Label != "" {
			fmt.Fprintf(&b, " %q", short(f.Label))
		}
		b.WriteString(")")
	}
	b.WriteString(": " + f.Reason)
	if f.Detail != "" {
		b.WriteString(": " + f.Detail)
	}
	return b.String()
}

func short(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// Evaluate judges a log's events — in log order, with digests of the
// policy's bank, as eventlog's Verify (vouched for by quoted PCRs) or
// UnverifiedEvents return them — at now: update windows ending after now
// accept their digests too (zero now: none). It returns nil when the log
// meets the policy.
func (c *Compiled) Evaluate(events []eventlog.Event, now time.Time) []Finding {
	var out []Finding
	byPCR := map[int][]eventlog.Event{}
	for _, e := range events {
		if e.Type == evNoAction {
			continue // not extended
		}
		byPCR[e.PCR] = append(byPCR[e.PCR], e)
	}
	pcrs := make([]int, 0, len(byPCR)+len(c.pcrs))
	for p := range byPCR {
		pcrs = append(pcrs, p)
	}
	for p := range c.pcrs {
		if byPCR[p] == nil {
			pcrs = append(pcrs, p)
		}
	}
	slices.Sort(pcrs)
	for _, p := range pcrs {
		evs := byPCR[p]
		cp := c.pcrs[p]
		switch {
		case cp == nil && p > Scope:
			// outside the boot scope and not in the policy
		case cp == nil:
			e := evs[0]
			out = append(out, c.finding(e, nil, ReasonExtra, fmt.Sprintf("the policy has no entry for pcr %d (%d events)", p, len(evs))))
		case cp.byVal:
			v := c.replay(p, events)
			if _, ok := cp.values[string(v)]; !ok && !c.windowValue(now, p, v) {
				out = append(out, Finding{PCR: p, Seq: -1, Reason: ReasonValue,
					Detail: fmt.Sprintf("%d events replay to %s, not an accepted value (%d accepted)", len(evs), Digest(c.bank, v), len(cp.values))})
			}
		default:
			out = append(out, c.evalEvents(p, cp, evs, now)...)
		}
	}
	if sb := c.doc.SecureBoot; sb != SecureBootAny {
		if f := c.checkSecureBoot(sb, byPCR[7]); f != nil {
			out = append(out, *f)
		}
	}
	return out
}

const (
	evNoAction           = 0x03
	evEFIVariableDriver  = 0x80000001
	evEFIBootServicesApp = 0x80000003
	evIPL                = 0x0d
)

func (c *Compiled) finding(e eventlog.Event, s *compiledSlot, reason, detail string) Finding {
	f := Finding{PCR: e.PCR, Seq: e.Seq, Type: eventlog.TypeName(e.Type), Digest: Digest(c.bank, e.Digest), Reason: reason, Detail: detail}
	if s != nil {
		f.Role, f.Label = s.Role, s.Label
	} else {
		f.Role, f.Label = roleOf(e, c.bank), eventlog.Describe(e)
	}
	return f
}

func (c *Compiled) evalEvents(p int, cp *compiledPCR, evs []eventlog.Event, now time.Time) []Finding {
	var out []Finding
	for i, e := range evs {
		if i >= len(cp.events) {
			out = append(out, c.finding(e, nil, ReasonExtra,
				fmt.Sprintf("digest %s; the policy has %d events in pcr %d", Digest(c.bank, e.Digest), len(cp.events), p)))
			continue
		}
		s := &cp.events[i]
		if e.Type != s.typ {
			out = append(out, c.finding(e, s, ReasonType, fmt.Sprintf("the policy's event %d of pcr %d is %s", i, p, s.Type)))
			continue
		}
		if _, ok := s.digests[string(e.Digest)]; ok || c.windowEvent(now, p, i, e.Digest) {
			continue
		}
		f := c.finding(e, s, ReasonDigest, fmt.Sprintf("%s is not one of the %d accepted", Digest(c.bank, e.Digest), len(s.digests)))
		if d := eventlog.Describe(e); d != s.Label && !strings.HasPrefix(d, "(") {
			f.Detail += fmt.Sprintf(" (the log says %q)", short(d))
		}
		out = append(out, f)
	}
	for i := len(evs); i < len(cp.events); i++ {
		s := &cp.events[i]
		out = append(out, Finding{PCR: p, Seq: -1, Type: s.Type, Role: s.Role, Label: s.Label, Reason: ReasonMissing,
			Detail: fmt.Sprintf("the policy's event %d of pcr %d (%s %s %q) is not in the log", i, p, s.Type, s.Role, short(s.Label))})
	}
	return out
}

func (c *Compiled) windowEvent(now time.Time, p, slot int, d []byte) bool {
	if now.IsZero() {
		return false
	}
	for i := range c.windows {
		w := &c.windows[i]
		if now.Before(w.until) {
			if _, ok := w.events[p][slot][string(d)]; ok {
				return true
			}
		}
	}
	return false
}

func (c *Compiled) windowValue(now time.Time, p int, v []byte) bool {
	if now.IsZero() {
		return false
	}
	for i := range c.windows {
		w := &c.windows[i]
		if now.Before(w.until) {
			if _, ok := w.values[p][string(v)]; ok {
				return true
			}
		}
	}
	return false
}

// replay is the value PCR p's events extend to (a StartupLocality
// EV_NO_ACTION sets PCR 0's initial locality, as the TPM does).
func (c *Compiled) replay(p int, events []eventlog.Event) []byte {
	h, _ := c.bank.CryptoHash()
	v := make([]byte, h.Size())
	started := false
	for _, e := range events {
		if e.PCR != p {
			continue
		}
		if e.Type == evNoAction {
			if p == 0 && !started && len(e.Data) == 17 && strings.HasPrefix(string(e.Data), "StartupLocality\x00") {
				v[len(v)-1] = e.Data[16]
			}
			continue
		}
		started = true
		hh := h.New()
		hh.Write(v)
		hh.Write(e.Digest)
		v = hh.Sum(v[:0])
	}
	return v
}

// SecureBootState reads the Secure Boot state from a log's PCR 7
// events: the SecureBoot variable's measured value. ok is false when no
// such measured variable is there.
func SecureBootState(events []eventlog.Event, bankDigestMeasured func(eventlog.Event) bool) (enabled bool, at eventlog.Event, ok bool) {
	for _, e := range events {
		if e.PCR != 7 || e.Type != evEFIVariableDriver {
			continue
		}
		name, val, isVar := eventlog.Variable(e.Data)
		if !isVar || name != "SecureBoot" || !bankDigestMeasured(e) {
			continue
		}
		return len(val) == 1 && val[0] == 1, e, true
	}
	return false, eventlog.Event{}, false
}

func (c *Compiled) checkSecureBoot(want string, pcr7 []eventlog.Event) *Finding {
	enabled, e, ok := SecureBootState(pcr7, func(e eventlog.Event) bool { return eventlog.DataMeasured(e, c.bank) })
	switch {
	case !ok && want == SecureBootEnabled:
		return &Finding{PCR: 7, Seq: -1, Reason: ReasonNoSBVar, Detail: "the policy requires secure boot enabled; the log measures no SecureBoot variable"}
	case !ok:
		return nil // disabled required: no variable measured is not enabled
	case enabled && want == SecureBootDisabled:
		f := c.finding(e, nil, ReasonSecureBoot, "secure boot is enabled; the policy expects it disabled")
		return &f
	case !enabled && want == SecureBootEnabled:
		f := c.finding(e, nil, ReasonSecureBoot, "secure boot is disabled; the policy requires it enabled")
		return &f
	}
	return nil
}
