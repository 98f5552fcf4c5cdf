// SPDX-License-Identifier: Apache-2.0

package eventlog

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/intactsec/intact/digest"
)

// What a parser behind this package must do beyond the 14 real logs
// (TestReplayExpectedPCRs). Each is a reason google/go-eventlog does not
// replace go-attestation yet (docs/DEVELOPING.md, "Dependencies"): its
// tcg.ParseEventLog drops a SHA-512 bank from a log's algorithms, and
// takes an event on PCR index 0xFFFFFFFF for the end of the log (an
// error, or with AllowPadding every later event silently dropped).

// agileEvent is one event of a made-up log: EV_IPL on pcr measuring data,
// or EV_NO_ACTION with zero digests.
type agileEvent struct {
	pcr      uint32
	noAction bool
	data     []byte
}

var tpmAlgs = map[crypto.Hash]uint16{crypto.SHA1: 0x04, crypto.SHA256: 0x0B, crypto.SHA384: 0x0C, crypto.SHA512: 0x0D}

// agileLog builds a crypto-agile log: the Spec ID event for banks, then
// events.
func agileLog(banks []crypto.Hash, events []agileEvent) []byte {
	le32 := binary.LittleEndian.AppendUint32
	le16 := binary.LittleEndian.AppendUint16
	spec := []byte("Spec ID Event03\x00")
	spec = le32(spec, 0)                  // platform class
	spec = append(spec, 0, 2, 0, 2)       // version 2.0, errata 0, UINTN 8 bytes
	spec = le32(spec, uint32(len(banks))) // number of algorithms
	for _, h := range banks {
		spec = le16(spec, tpmAlgs[h])
		spec = le16(spec, uint16(h.Size()))
	}
	spec = append(spec, 0) // no vendor info
	// TCG_PCClientPCREvent (SHA-1 format) holding the Spec ID event.
	b := le32(nil, 0)
	b = le32(b, evNoAction)
	b = append(b, make([]byte, 20)...)
	b = le32(b, uint32(len(spec)))
	b = append(b, spec...)
	for _, e := range events {
		// TCG_PCR_EVENT2
		typ := uint32(0x0D) // EV_IPL
		if e.noAction {
			typ = evNoAction
		}
		b = le32(b, e.pcr)
		b = le32(b, typ)
		b = le32(b, uint32(len(banks)))
		for _, h := range banks {
			b = le16(b, tpmAlgs[h])
			d := make([]byte, h.Size())
			if !e.noAction {
				hh := h.New()
				hh.Write(e.data)
				d = hh.Sum(nil)
			}
			b = append(b, d...)
		}
		b = le32(b, uint32(len(e.data)))
		b = append(b, e.data...)
	}
	return b
}

// extendAll is the PCR value a series of data measured into a fresh PCR
// gives in bank h.
func extendAll(h crypto.Hash, data ...[]byte) []byte {
	v := make([]byte, h.Size())
	for _, d := range data {
		dh := h.New()
		dh.Write(d)
		x := h.New()
		x.Write(v)
		x.Write(dh.Sum(nil))
		v = x.Sum(nil)
	}
	return v
}

// TestSHA512Bank: a log with a SHA-512 bank (TPMs may allocate one) has
// it among its banks, replays it and verifies against it.
func TestSHA512Bank(t *testing.T) {
	one, two := []byte("first"), []byte("second")
	l, err := Parse(agileLog([]crypto.Hash{crypto.SHA256, crypto.SHA512}, []agileEvent{{pcr: 4, data: one}, {pcr: 4, data: two}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Banks(); !slices.Contains(got, digest.SHA512) || !slices.Contains(got, digest.SHA256) {
		t.Fatalf("banks %v, want sha256 and sha512", got)
	}
	want := extendAll(crypto.SHA512, one, two)
	got, err := l.Replay()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[digest.SHA512][4], want) {
		t.Errorf("sha512 pcr 4: replay %x, want %x", got[digest.SHA512][4], want)
	}
	events, err := l.Verify(digest.PCRs{digest.SHA512: {4: want}})
	if err != nil || len(events) != 2 || events[1].Seq != 1 || len(events[1].Digest) != 64 {
		t.Errorf("Verify(sha512): %v, %+v; want the two events with sha512 digests", err, events)
	}
	if _, err := l.Verify(digest.PCRs{digest.SHA512: {4: extendAll(crypto.SHA512, one)}}); err == nil {
		t.Error("Verify(sha512) against a value missing the second event: no error")
	}
}

// TestNoActionOnPCRFFFFFFFFMidLog: an EV_NO_ACTION event on PCR index
// 0xFFFFFFFF in the middle of a log is skipped; the events after it are
// parsed, replayed and verified (TestNoActionOnPCRFFFFFFFF appends one to
// a real log).
func TestNoActionOnPCRFFFFFFFFMidLog(t *testing.T) {
	one, two := []byte("first"), []byte("second")
	l, err := Parse(agileLog([]crypto.Hash{crypto.SHA256}, []agileEvent{
		{pcr: 4, data: one},
		{pcr: 0xFFFFFFFF, noAction: true, data: []byte("NvIndexInstance\x00\x00\x00\x00\x00")},
		{pcr: 4, data: two},
	}))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := l.UnverifiedEvents(digest.SHA256)
	if err != nil || len(ev) != 3 {
		t.Fatalf("UnverifiedEvents: %d events, %v; want 3", len(ev), err)
	}
	want := extendAll(crypto.SHA256, one, two)
	got, err := l.Replay()
	if err != nil || !bytes.Equal(got[digest.SHA256][4], want) {
		t.Errorf("replay pcr 4: %x, %v; want %x", got[digest.SHA256][4], err, want)
	}
	events, err := l.Verify(digest.PCRs{digest.SHA256: {4: want}})
	if err != nil || len(events) != 2 || events[1].Seq != 2 || !bytes.Equal(events[1].Data, two) {
		t.Errorf("Verify: %v, %+v; want the two EV_IPL events, the second at seq 2", err, events)
	}
}
