// SPDX-License-Identifier: Apache-2.0

// Package bootpolicy is the measured-boot policy the verifier applies to
// a machine's TCG boot event log: which firmware configuration, Secure
// Boot state and keys, boot chain (shim, boot loader, kernel, initrd) and
// kernel command line are accepted. It is pure: it judges events a caller
// parsed (and, in the verifier, verified against quoted PCRs) with
// package eventlog.
//
// A policy is JSON (docs/boot-policy.md):
//
//	{"intact_boot_policy": 1, "name": "web", "bank": "sha256",
//	 "secure_boot": "enabled",
//	 "pcrs": {
//	   "0": {"values": ["sha256:…"]},
//	   "4": {"events": [{"type": "EV_EFI_ACTION", "label": "Calling EFI Application from Boot Option", "digests": ["sha256:…"]},
//	                    {"type": "EV_EFI_BOOT_SERVICES_APPLICATION", "role": "shim", "label": "\\EFI\\ubuntu\\shimx64.efi", "digests": ["sha256:…", "sha256:…"]}, …]},
//	   …},
//	 "windows": [{"until": "2026-12-31T00:00:00Z", "note": "kernel 6.8", "events": {"9/1": ["sha256:…"]}, "values": {"0": ["sha256:…"]}}]}
//
// A PCR is judged either event by event ("events": the log's events of
// that PCR, in order, each against its slot's set of accepted digests —
// the variants) or by its final value ("values": the set of accepted
// values the log's events replay to). PCRs with events in the log and no
// entry in the policy are findings; so are extra and missing events.
// Every finding names the PCR, the event (its index in the log, type,
// role and label) and why.
package bootpolicy

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/internal/strictjson"
)

// Version is the policy format version ("intact_boot_policy").
const Version = 1

// ErrFormat is wrapped by every error about a malformed policy.
var ErrFormat = errors.New("malformed boot policy")

func ferr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// Secure Boot requirements (Policy.SecureBoot).
const (
	SecureBootEnabled  = "enabled"  // the SecureBoot variable measured in PCR 7 is 1
	SecureBootDisabled = "disabled" // it is 0 (or absent): a machine known to boot without
	SecureBootAny      = ""         // not checked (the PCR 7 slots still are)
)

// Policy is a boot policy document.
type Policy struct {
	Version    int            `json:"intact_boot_policy"`
	Name       string         `json:"name,omitempty"`
	Bank       string         `json:"bank"`
	SecureBoot string         `json:"secure_boot,omitempty"`
	PCRs       map[string]PCR `json:"pcrs"`
	Windows    []Window       `json:"windows,omitempty"`
}

// PCR is what one PCR may hold: its events slot by slot, or its value.
type PCR struct {
	Events []Slot   `json:"events,omitempty"`
	Values []string `json:"values,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// Slot is one event of a PCR: its type, the accepted digests (variants)
// and, for people and reasons, its role and what its data says.
type Slot struct {
	Type    string   `json:"type"`
	Role    string   `json:"role,omitempty"`  // shim, bootloader, kernel, initrd, kernel_cmdline, SecureBoot, PK, KEK, db, dbx
	Label   string   `json:"label,omitempty"` // a path, a variable name, a command line (from the learned log)
	Digests []string `json:"digests"`
}

// Window also accepts other digests until a time, like the runtime
// policy's windows: "events" by "PCR/slot" (slot numbered from 0),
// "values" by PCR. Expiry is judged with the caller's clock.
type Window struct {
	Until  time.Time           `json:"until"`
	Note   string              `json:"note,omitempty"`
	Events map[string][]string `json:"events,omitempty"`
	Values map[string][]string `json:"values,omitempty"`
}

// Compiled is a validated policy, ready to judge logs.
type Compiled struct {
	doc     Policy
	bank    digest.Algo
	size    int
	pcrs    map[int]*compiledPCR
	windows []compiledWindow
}

type compiledPCR struct {
	events []compiledSlot
	values map[string]struct{}
	byVal  bool
}

type compiledSlot struct {
	Slot
	typ     uint32
	digests map[string]struct{}
}

type compiledWindow struct {
	until  time.Time
	events map[int]map[int]map[string]struct{} // pcr -> slot -> digests
	values map[int]map[string]struct{}
}

// Policy returns the document the policy was compiled from.
func (c *Compiled) Policy() Policy { return c.doc }

// Bank is the digest bank the policy judges.
func (c *Compiled) Bank() digest.Algo { return c.bank }

// Parse parses and validates a policy document: strict JSON (unknown
// members are errors), a known version and bank, digests of that bank,
// event types by their TCG names. Errors wrap ErrFormat.
func Parse(b []byte) (*Compiled, error) {
	var p Policy
	if err := strictjson.Decode(b, &p); err != nil {
		return nil, ferr("%v", err)
	}
	return Compile(p)
}

// Compile validates a policy.
func Compile(p Policy) (*Compiled, error) {
	if p.Version != Version {
		return nil, ferr("intact_boot_policy %d (want %d)", p.Version, Version)
	}
	bank, err := digest.ParseAlgo(p.Bank)
	if err != nil {
		return nil, ferr("bank %q: %v", p.Bank, err)
	}
	h, ok := bank.CryptoHash()
	if !ok {
		return nil, ferr("bank %q: not supported", p.Bank)
	}
	switch p.SecureBoot {
	case SecureBootEnabled, SecureBootDisabled, SecureBootAny:
	default:
		return nil, ferr("secure_boot %q (want enabled, disabled or absent)", p.SecureBoot)
	}
	if len(p.PCRs) == 0 {
		return nil, ferr("no pcrs")
	}
	c := &Compiled{doc: p, bank: bank, size: h.Size(), pcrs: map[int]*compiledPCR{}}
	for key, pp := range p.PCRs {
		idx, err := pcrIndex(key)
		if err != nil {
			return nil, err
		}
		cp := &compiledPCR{}
		switch {
		case len(pp.Events) > 0 && len(pp.Values) > 0:
			return nil, ferr("pcr %d: both events and values", idx)
		case len(pp.Values) > 0:
			cp.byVal = true
			if cp.values, err = c.digestSet(fmt.Sprintf("pcr %d values", idx), pp.Values); err != nil {
				return nil, err
			}
		default: // events (an empty list: the PCR must have no events)
			for i, s := range pp.Events {
				typ, ok := eventlog.TypeByName(s.Type)
				if !ok {
					return nil, ferr("pcr %d event %d: unknown event type %q", idx, i, s.Type)
				}
				ds, err := c.digestSet(fmt.Sprintf("pcr %d event %d", idx, i), s.Digests)
				if err != nil {
					return nil, err
				}
				if len(ds) == 0 {
					return nil, ferr("pcr %d event %d: no digests", idx, i)
				}
				cp.events = append(cp.events, compiledSlot{Slot: s, typ: typ, digests: ds})
			}
		}
		c.pcrs[idx] = cp
	}
	for i, w := range p.Windows {
		if w.Until.IsZero() {
			return nil, ferr("windows[%d]: no until time", i)
		}
		cw := compiledWindow{until: w.Until, events: map[int]map[int]map[string]struct{}{}, values: map[int]map[string]struct{}{}}
		for key, ds := range w.Events {
			ps, ss, ok := strings.Cut(key, "/")
			if !ok {
				return nil, ferr("windows[%d]: event key %q is not PCR/SLOT", i, key)
			}
			idx, err := pcrIndex(ps)
			if err != nil {
				return nil, err
			}
			slot, err := strconv.Atoi(ss)
			if err != nil || slot < 0 || slot > 4096 || strconv.Itoa(slot) != ss {
				return nil, ferr("windows[%d]: event key %q: bad slot", i, key)
			}
			set, err := c.digestSet(fmt.Sprintf("windows[%d] %s", i, key), ds)
			if err != nil {
				return nil, err
			}
			if cw.events[idx] == nil {
				cw.events[idx] = map[int]map[string]struct{}{}
			}
			cw.events[idx][slot] = set
		}
		for key, ds := range w.Values {
			idx, err := pcrIndex(key)
			if err != nil {
				return nil, err
			}
			if cw.values[idx], err = c.digestSet(fmt.Sprintf("windows[%d] %s", i, key), ds); err != nil {
				return nil, err
			}
		}
		c.windows = append(c.windows, cw)
	}
	return c, nil
}

func pcrIndex(key string) (int, error) {
	idx, err := strconv.Atoi(key)
	if err != nil || idx < 0 || idx > 23 || strconv.Itoa(idx) != key {
		return 0, ferr("pcr %q: want 0-23", key)
	}
	return idx, nil
}

// digestSet parses "bank:hex" digests of the policy's bank.
func (c *Compiled) digestSet(what string, ds []string) (map[string]struct{}, error) {
	set := make(map[string]struct{}, len(ds))
	for _, d := range ds {
		algo, hx, ok := strings.Cut(d, ":")
		b, err := hex.DecodeString(hx)
		if !ok || algo != c.bank.String() || err != nil || len(b) != c.size || strings.ToLower(hx) != hx {
			return nil, ferr("%s: %q is not a %s digest (%s:%d lowercase hex digits)", what, d, c.bank, c.bank, 2*c.size)
		}
		set[string(b)] = struct{}{}
	}
	return set, nil
}

// Digest renders a digest as the policy writes it.
func Digest(bank digest.Algo, d []byte) string { return bank.String() + ":" + hex.EncodeToString(d) }

// Canonical returns the policy as indented JSON with sorted digest lists.
func Canonical(p Policy) ([]byte, error) {
	for k, pp := range p.PCRs {
		pp.Values = sortedUnique(pp.Values)
		for i := range pp.Events {
			pp.Events[i].Digests = sortedUnique(pp.Events[i].Digests)
		}
		p.PCRs[k] = pp
	}
	sort.SliceStable(p.Windows, func(i, j int) bool { return p.Windows[i].Until.Before(p.Windows[j].Until) })
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
