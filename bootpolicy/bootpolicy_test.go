// SPDX-License-Identifier: Apache-2.0

package bootpolicy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/internal/testenv"
)

// realLogs are every TCG event log in the repository's test data
// (testdata/tcg-eventlogs, see its README for provenance).
func realLogs(t testing.TB) []string {
	t.Helper()
	dir := testenv.Testdata(t, "tcg-eventlogs")
	logs, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil || len(logs) < 10 {
		t.Fatalf("real event logs: %v (%d)", err, len(logs))
	}
	return logs
}

// events parses a log and returns its events in its best bank.
func events(t testing.TB, path string) ([]eventlog.Event, digest.Algo) {
	t.Helper()
	l, err := eventlog.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bank := digest.SHA1
	if slices.Contains(l.Banks(), digest.SHA256) {
		bank = digest.SHA256
	}
	evs, err := l.UnverifiedEvents(bank)
	if err != nil {
		t.Fatal(err)
	}
	return evs, bank
}

func learn(t testing.TB, bank digest.Algo, logs ...[]eventlog.Event) *bootpolicy.Compiled {
	t.Helper()
	p, err := bootpolicy.Generate("test", bank, logs...)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := bootpolicy.Canonical(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bootpolicy.Parse(doc) // through its JSON, as stored
	if err != nil {
		t.Fatalf("learned policy does not parse: %v\n%s", err, doc)
	}
	return c
}

func clone(evs []eventlog.Event) []eventlog.Event {
	out := slices.Clone(evs)
	for i := range out {
		out[i].Digest = bytes.Clone(out[i].Digest)
		out[i].Data = bytes.Clone(out[i].Data)
	}
	return out
}

// component is the index of a boot chain event to change: the last
// EV_EFI_BOOT_SERVICES_APPLICATION in PCR 4, else the last event of an
// event-judged PCR.
func component(evs []eventlog.Event) int {
	last := -1
	for i, e := range evs {
		if e.PCR == 4 && e.Type == 0x80000003 {
			return i
		}
		if slices.Contains(bootpolicy.EventPCRs, e.PCR) && e.Type != 3 {
			last = i
		}
	}
	return last
}

func only(t *testing.T, fs []bootpolicy.Finding, reason string, seq int) bootpolicy.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Reason == reason && (seq < 0 || f.Seq == seq) {
			if !strings.Contains(f.String(), "event "+strconv.Itoa(f.Seq)) && f.Seq >= 0 {
				t.Fatalf("finding %q does not name event %d", f, f.Seq)
			}
			return f
		}
	}
	t.Fatalf("no %s finding for event %d in %v", reason, seq, fs)
	return bootpolicy.Finding{}
}

// Over every real log: the policy learned from it accepts it; a changed
// component digest, an extra event in a judged PCR, or an extra PCR
// fails with a reason naming the event.
func TestRealLogs(t *testing.T) {
	for _, path := range realLogs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			evs, bank := events(t, path)
			c := learn(t, bank, evs)
			if fs := c.Evaluate(evs, time.Time{}); len(fs) != 0 {
				t.Fatalf("the learned policy refuses its own log: %v", fs)
			}

			// One component digest changed.
			i := component(evs)
			if i < 0 {
				t.Skip("no event-judged pcr in this log") // never in the test data: checked below
			}
			changed := clone(evs)
			changed[i].Digest[0] ^= 0xff
			f := only(t, c.Evaluate(changed, time.Time{}), bootpolicy.ReasonDigest, evs[i].Seq)
			t.Logf("changed: %s", f)

			// An extra event after the last one of that PCR.
			extra := clone(evs)
			ev := extra[i]
			ev.Seq = len(evs)
			ev.Digest = bytes.Repeat([]byte{0x42}, len(ev.Digest))
			extra = append(extra, ev)
			f = only(t, c.Evaluate(extra, time.Time{}), bootpolicy.ReasonExtra, len(evs))
			t.Logf("extra: %s", f)

			// An event in a boot PCR the policy has no entry for.
			var unused int = -1
			for p := 0; p <= bootpolicy.Scope; p++ {
				if _, ok := c.Policy().PCRs[strconv.Itoa(p)]; !ok {
					unused = p
					break
				}
			}
			if unused >= 0 {
				odd := append(clone(evs), eventlog.Event{Seq: len(evs), PCR: unused, Type: 0x0d, Data: []byte("surprise"), Digest: bytes.Repeat([]byte{1}, len(ev.Digest))})
				f = only(t, c.Evaluate(odd, time.Time{}), bootpolicy.ReasonExtra, len(evs))
				t.Logf("unexplained pcr: %s", f)
			}

			// A value-judged PCR with another value.
			for _, e := range evs {
				if e.Type != 3 && !slices.Contains(bootpolicy.EventPCRs, e.PCR) {
					v := clone(evs)
					v[e.Seq].Digest[1] ^= 1
					only(t, c.Evaluate(v, time.Time{}), bootpolicy.ReasonValue, -1)
					break
				}
			}
		})
	}
}

func TestEveryLogHasAJudgedComponent(t *testing.T) {
	for _, path := range realLogs(t) {
		evs, _ := events(t, path)
		if component(evs) < 0 {
			t.Errorf("%s: no event in pcrs %v", path, bootpolicy.EventPCRs)
		}
	}
}

// setSecureBoot rewrites the SecureBoot variable's value in a log's
// events and its digest (the hash of the data, as firmware measures it):
// the log of the same machine booted with Secure Boot toggled.
func setSecureBoot(t *testing.T, evs []eventlog.Event, bank digest.Algo, on bool) (int, bool) {
	h, _ := bank.CryptoHash()
	for i := range evs {
		e := &evs[i]
		name, val, ok := eventlog.Variable(e.Data)
		if e.PCR != 7 || !ok || name != "SecureBoot" || len(val) != 1 {
			continue
		}
		off := len(e.Data) - 1
		if on {
			e.Data[off] = 1
		} else {
			e.Data[off] = 0
		}
		hh := h.New()
		hh.Write(e.Data)
		e.Digest = hh.Sum(nil)
		return e.Seq, true
	}
	return 0, false
}

// Secure Boot disabled on a machine whose policy requires it: refused,
// naming the SecureBoot event; and the converse.
func TestSecureBoot(t *testing.T) {
	tested := 0
	for _, path := range realLogs(t) {
		evs, bank := events(t, path)
		c := learn(t, bank, evs)
		toggled := clone(evs)
		switch c.Policy().SecureBoot {
		case bootpolicy.SecureBootEnabled:
			seq, ok := setSecureBoot(t, toggled, bank, false)
			if !ok {
				t.Fatalf("%s: enabled without a SecureBoot variable", path)
			}
			f := only(t, c.Evaluate(toggled, time.Time{}), bootpolicy.ReasonSecureBoot, seq)
			if !strings.Contains(f.String(), "secure boot is disabled") {
				t.Fatalf("%s: %s", path, f)
			}
			tested++
		case bootpolicy.SecureBootDisabled:
			if seq, ok := setSecureBoot(t, toggled, bank, true); ok {
				only(t, c.Evaluate(toggled, time.Time{}), bootpolicy.ReasonSecureBoot, seq)
			}
		}
	}
	if tested < 3 {
		t.Fatalf("only %d logs with secure boot enabled", tested)
	}
	// A real log of a machine without Secure Boot, against the policy of
	// one with: refused for secure boot.
	on, bank := events(t, testenv.Testdata(t, "tcg-eventlogs/rhel8-uefi.bin"))
	off, _ := events(t, testenv.Testdata(t, "tcg-eventlogs/ubuntu-2104-no-secure-boot.bin"))
	c := learn(t, bank, on)
	if c.Policy().SecureBoot != bootpolicy.SecureBootEnabled {
		t.Fatalf("rhel8-uefi: secure boot %q", c.Policy().SecureBoot)
	}
	t.Logf("no-secure-boot log: %s", only(t, c.Evaluate(off, time.Time{}), bootpolicy.ReasonSecureBoot, -1))
}

// Two variants of a component (two kernels) are both accepted by a
// policy learned from both logs; a third is not.
func TestVariants(t *testing.T) {
	for _, path := range realLogs(t) {
		evs, bank := events(t, path)
		i := component(evs)
		second := clone(evs)
		second[i].Digest[0] ^= 0x55
		c := learn(t, bank, evs, second)
		for n, l := range [][]eventlog.Event{evs, second} {
			if fs := c.Evaluate(l, time.Time{}); len(fs) != 0 {
				t.Fatalf("%s: variant %d refused: %v", path, n, fs)
			}
		}
		third := clone(evs)
		third[i].Digest[0] ^= 0x33
		only(t, c.Evaluate(third, time.Time{}), bootpolicy.ReasonDigest, evs[i].Seq)
	}
}

// An update window accepts a new digest until it ends, as the runtime
// policy's does: before its end yes, at and after it no, with no clock
// (zero time) no.
func TestUpdateWindow(t *testing.T) {
	evs, bank := events(t, testenv.Testdata(t, "tcg-eventlogs/ubuntu-2104-no-dbx.bin"))
	base, err := bootpolicy.Generate("w", bank, evs)
	if err != nil {
		t.Fatal(err)
	}
	i := component(evs)
	next := clone(evs)
	next[i].Digest[0] ^= 0x99
	slot := -1
	for j := 0; j <= i; j++ {
		if evs[j].PCR == evs[i].PCR && evs[j].Type != 3 {
			slot++
		}
	}
	end := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	base.Windows = []bootpolicy.Window{{Until: end, Note: "shim update", Events: map[string][]string{
		strconv.Itoa(evs[i].PCR) + "/" + strconv.Itoa(slot): {bootpolicy.Digest(bank, next[i].Digest)}}}}
	doc, _ := bootpolicy.Canonical(base)
	c, err := bootpolicy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{{end.Add(-time.Hour), true}, {end, false}, {end.Add(time.Second), false}, {time.Time{}, false}} {
		fs := c.Evaluate(next, tc.at)
		if (len(fs) == 0) != tc.ok {
			t.Errorf("at %v: findings %v, want accepted %v", tc.at, fs, tc.ok)
		}
		if fs := c.Evaluate(evs, tc.at); len(fs) != 0 {
			t.Errorf("at %v: the base log refused: %v", tc.at, fs)
		}
	}
}

// A policy that does not parse, or names what this package does not
// know, is an error — never a policy that accepts everything.
func TestParseErrors(t *testing.T) {
	good := `{"intact_boot_policy":1,"bank":"sha256","pcrs":{"4":{"events":[{"type":"EV_SEPARATOR","digests":["sha256:` + strings.Repeat("ab", 32) + `"]}]}}}`
	if _, err := bootpolicy.Parse([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `null`,
		strings.Replace(good, `"intact_boot_policy":1`, `"intact_boot_policy":2`, 1),
		strings.Replace(good, `"bank":"sha256"`, `"bank":"md5"`, 1),
		strings.Replace(good, `EV_SEPARATOR`, `EV_BOGUS`, 1),
		strings.Replace(good, `"sha256:ab`, `"sha1:ab`, 1),
		strings.Replace(good, `"4"`, `"24"`, 1),
		strings.Replace(good, `"4"`, `"04"`, 1),
		strings.Replace(good, `"pcrs"`, `"pcrz"`, 1),
		strings.Replace(good, `"digests":["sha256:`+strings.Repeat("ab", 32)+`"]`, `"digests":[]`, 1),
		strings.Replace(good, `{"intact_boot_policy":1,`, `{"intact_boot_policy":1,"secure_boot":"maybe",`, 1),
		strings.Replace(good, `"pcrs":{`, `"pcrs":{},"x":{`, 1),
		good + `{}`,
		`{"intact_boot_policy":1,"bank":"sha256","pcrs":{}}`,
		`{"intact_boot_policy":1,"bank":"sha256","pcrs":{"0":{"values":["sha256:00"]}}}`,
		`{"intact_boot_policy":1,"bank":"sha256","pcrs":{"0":{"values":["sha256:` + strings.Repeat("00", 32) + `"]}},"windows":[{"events":{}}]}`,
	} {
		if _, err := bootpolicy.Parse([]byte(bad)); !errors.Is(err, bootpolicy.ErrFormat) {
			t.Errorf("Parse(%.80q) = %v, want ErrFormat", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"intact_boot_policy":1,"bank":"sha256","pcrs":{"0":{"values":["sha256:` + strings.Repeat("00", 32) + `"]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := bootpolicy.Parse(b)
		if err == nil {
			c.Evaluate(nil, time.Now()) // judging nothing must not panic
		}
	})
}

// variable makes UEFI_VARIABLE_DATA (for the parser tests).
func variable(name string, value []byte) []byte {
	u := utf16.Encode([]rune(name))
	b := make([]byte, 32, 32+2*len(u)+len(value))
	binary.LittleEndian.PutUint64(b[16:], uint64(len(u)))
	binary.LittleEndian.PutUint64(b[24:], uint64(len(value)))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, value...)
}

// The SecureBoot value is read only from a measured variable: data that
// does not hash to the digest is not believed.
func TestSecureBootNeedsMeasuredData(t *testing.T) {
	data := variable("SecureBoot", []byte{1})
	sum := sha256.Sum256(data)
	p := bootpolicy.Policy{Version: 1, Bank: "sha256", SecureBoot: bootpolicy.SecureBootEnabled, PCRs: map[string]bootpolicy.PCR{
		"7": {Events: []bootpolicy.Slot{{Type: "EV_EFI_VARIABLE_DRIVER_CONFIG", Digests: []string{bootpolicy.Digest(digest.SHA256, sum[:])}}}}}}
	c, err := bootpolicy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	ev := eventlog.Event{PCR: 7, Type: 0x80000001, Data: data, Digest: sum[:]}
	if fs := c.Evaluate([]eventlog.Event{ev}, time.Time{}); len(fs) != 0 {
		t.Fatalf("enabled: %v", fs)
	}
	lying := ev
	lying.Data = variable("SecureBoot", []byte{1})
	lying.Digest = bytes.Repeat([]byte{7}, 32) // data claims 1, digest is something else
	fs := c.Evaluate([]eventlog.Event{lying}, time.Time{})
	only(t, fs, bootpolicy.ReasonNoSBVar, -1)
}
