// SPDX-License-Identifier: Apache-2.0

package bootpolicy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
)

// EventPCRs are the PCRs Generate judges event by event: the boot chain
// (4), Secure Boot configuration and authorities (7), and the boot
// loader's commands, kernel command line and files (8, 9). The others in
// 0–9 are judged by value.
var EventPCRs = []int{4, 7, 8, 9}

// Generate learns a policy from the events of known-good boots (each a
// log's events, as UnverifiedEvents or Verify return them, digests of
// bank): every event of PCRs 4, 7, 8 and 9 a slot, every other PCR of
// 0–9 its value, and Secure Boot required in the state the logs share.
// With several logs, each slot accepts every log's digest (the
// variants) and each PCR every log's value; the logs must have the same
// events (count and types) in the PCRs judged by event.
func Generate(name string, bank digest.Algo, logs ...[]eventlog.Event) (Policy, error) {
	if len(logs) == 0 {
		return Policy{}, fmt.Errorf("no event log")
	}
	h, ok := bank.CryptoHash()
	if !ok {
		return Policy{}, fmt.Errorf("unsupported bank %s", bank)
	}
	p := Policy{Version: Version, Name: name, Bank: bank.String(), PCRs: map[string]PCR{}}
	c := &Compiled{bank: bank, size: h.Size()}
	sbSeen := map[bool]bool{}
	for li, events := range logs {
		byPCR := map[int][]eventlog.Event{}
		for _, e := range events {
			if e.Type == evNoAction || e.PCR > Scope {
				continue
			}
			if len(e.Digest) != h.Size() {
				return Policy{}, fmt.Errorf("log %d: event %d has no %s digest", li+1, e.Seq, bank)
			}
			byPCR[e.PCR] = append(byPCR[e.PCR], e)
		}
		for pcr, evs := range byPCR {
			key := strconv.Itoa(pcr)
			pp, had := p.PCRs[key]
			if !slices.Contains(EventPCRs, pcr) {
				pp.Values = append(pp.Values, Digest(bank, c.replay(pcr, events)))
				p.PCRs[key] = pp
				continue
			}
			if had && len(pp.Events) != len(evs) {
				return Policy{}, fmt.Errorf("log %d has %d events in pcr %d, log 1 %d: these boots differ by more than digests (generate a policy from each and judge with one, or keep them apart)",
					li+1, len(evs), pcr, len(pp.Events))
			}
			for i, e := range evs {
				d := Digest(bank, e.Digest)
				if !had {
					pp.Events = append(pp.Events, Slot{Type: eventlog.TypeName(e.Type), Role: roleOf(e, bank), Label: labelOf(e), Digests: []string{d}})
					continue
				}
				s := &pp.Events[i]
				if s.Type != eventlog.TypeName(e.Type) {
					return Policy{}, fmt.Errorf("log %d: pcr %d event %d is %s, log 1 has %s there", li+1, pcr, i, eventlog.TypeName(e.Type), s.Type)
				}
				if !slices.Contains(s.Digests, d) {
					s.Digests = append(s.Digests, d)
				}
			}
			p.PCRs[key] = pp
		}
		// A PCR of the policy this log has no event in: accept "empty".
		for key, pp := range p.PCRs {
			pcr, _ := strconv.Atoi(key)
			if len(byPCR[pcr]) == 0 && li > 0 && len(pp.Events) > 0 {
				return Policy{}, fmt.Errorf("log %d has no events in pcr %d, log 1 has %d", li+1, pcr, len(pp.Events))
			}
		}
		enabled, _, ok := SecureBootState(events, func(e eventlog.Event) bool { return eventlog.DataMeasured(e, bank) })
		sbSeen[ok && enabled] = true
	}
	switch {
	case sbSeen[true] && !sbSeen[false]:
		p.SecureBoot = SecureBootEnabled
	case sbSeen[false] && !sbSeen[true]:
		p.SecureBoot = SecureBootDisabled
	}
	if len(p.PCRs) == 0 {
		return Policy{}, fmt.Errorf("the log has no events in pcrs 0-%d", Scope)
	}
	return p, nil
}

// roleOf names what an event measures, when its type and data tell.
func roleOf(e eventlog.Event, bank digest.Algo) string {
	switch {
	case e.PCR == 7 && e.Type == evEFIVariableDriver:
		if name, _, ok := eventlog.Variable(e.Data); ok {
			switch name {
			case "SecureBoot", "PK", "KEK", "db", "dbx":
				return name
			}
		}
	case e.Type == evEFIBootServicesApp:
		p := strings.ToLower(eventlog.Describe(e))
		switch {
		case strings.Contains(p, "shim"):
			return "shim"
		case strings.Contains(p, "grub"), strings.Contains(p, "systemd-boot"), strings.Contains(p, "boot") && strings.HasSuffix(p, ".efi"):
			return "bootloader"
		case strings.Contains(p, "vmlinuz"), strings.Contains(p, "linux"), strings.Contains(p, "kernel"):
			return "kernel"
		}
	case e.Type == evIPL && e.PCR == 9:
		p := strings.ToLower(eventlog.Describe(e))
		switch {
		case strings.Contains(p, "vmlinuz"), strings.Contains(p, "vmlinux"), strings.Contains(p, "bzimage"):
			return "kernel"
		case strings.Contains(p, "initrd"), strings.Contains(p, "initramfs"):
			return "initrd"
		}
	case e.Type == evIPL && e.PCR == 8:
		if strings.HasPrefix(string(e.Data), "kernel_cmdline:") {
			return "kernel_cmdline"
		}
	}
	return ""
}

func labelOf(e eventlog.Event) string {
	d := eventlog.Describe(e)
	if strings.HasPrefix(d, "(") && strings.HasSuffix(d, " bytes)") {
		return ""
	}
	if len(d) > 200 {
		d = d[:200]
	}
	return d
}
