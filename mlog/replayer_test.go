package mlog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/intactsec/intact/digest"
)

func replayerList(t *testing.T, n int) []Record {
	t.Helper()
	var recs []Record
	for i := range n {
		d := sha256.Sum256([]byte{byte(i)})
		r, err := NewRecord(10+i%2, TemplateIMANG, FileMeasurement{Algo: digest.SHA256, Digest: d[:], Path: fmt.Sprint("/f", i)}, digest.SHA1)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

func listOf(t *testing.T, recs []Record) *List {
	t.Helper()
	var b []byte
	for i := range recs {
		b = recs[i].AppendBinary(b)
	}
	l, err := ParseBinary(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The replayer fed record by record, or resumed from a saved state
// (offset and running value), matches where List.Replay does; only
// records of trusted PCRs are vouched for; an altered record is a
// TemplateHashError naming its index, and the replay goes on.
func TestReplayerIncremental(t *testing.T) {
	recs := replayerList(t, 10)
	vals, err := listOf(t, recs[:7]).Compute(digest.SHA1, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	trusted := digest.PCRs{digest.SHA256: {10: vals[digest.SHA256][10]}}
	v, err := listOf(t, recs).Replay(trusted)
	if err != nil {
		t.Fatal(err)
	}
	// Record 6 is the last of PCR 10 in the first 7: the prefix is 7.
	if v.Prefix != 7 || len(v.Records) != 4 {
		t.Fatalf("Replay: prefix %d, %d records; want 7, 4 (PCR 10 only)", v.Prefix, len(v.Records))
	}
	rp, err := NewReplayer(digest.SHA1, trusted, ReplayState{}, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var saved ReplayState
	matched := -1
	for i := range recs {
		if i == 3 {
			saved = ReplayState{Offset: rp.Offset(), PCRs: digest.PCRs{digest.SHA256: {10: bytes.Clone(rp.Value(digest.SHA256, 10))}}}
		}
		vouched, err := rp.Step(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		if vouched != (recs[i].PCR == 10) {
			t.Errorf("record %d on pcr %d: vouched %v", i, recs[i].PCR, vouched)
		}
		if rp.Matched() && matched < 0 {
			matched = int(rp.Offset())
		}
	}
	if matched != v.Prefix {
		t.Fatalf("replayer matched after %d records, Replay's prefix %d", matched, v.Prefix)
	}
	resumed, err := NewReplayer(digest.SHA1, trusted, saved, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i < len(recs) && !resumed.Matched(); i++ {
		if _, err := resumed.Step(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !resumed.Matched() || resumed.Offset() != 7 {
		t.Fatalf("resumed at 3: matched %v at %d, want 7", resumed.Matched(), resumed.Offset())
	}
	// An altered record.
	bad := recs[4]
	bad.Data = bytes.Clone(bad.Data)
	bad.Data[len(bad.Data)-1] ^= 1
	rp, _ = NewReplayer(digest.SHA1, trusted, ReplayState{}, ReplayOptions{})
	for i := range 4 {
		rp.Step(&recs[i])
	}
	_, err = rp.Step(&bad)
	var th *TemplateHashError
	if !errors.As(err, &th) || th.Record != 4 {
		t.Fatalf("altered record 4: %v", err)
	}
	if _, err := rp.Step(&recs[5]); err != nil || rp.Offset() != 6 {
		t.Fatalf("after the altered record: %v at %d", err, rp.Offset())
	}
	// Bad inputs.
	if _, err := NewReplayer(digest.SHA1, nil, ReplayState{}, ReplayOptions{}); err == nil {
		t.Error("no trusted values accepted")
	}
	if _, err := NewReplayer(digest.SHA1, trusted, ReplayState{PCRs: digest.PCRs{digest.SHA256: {10: []byte{1}}}}, ReplayOptions{}); err == nil {
		t.Error("a running value of the wrong size accepted")
	}
	if _, err := NewReplayer(digest.SHA1, digest.PCRs{digest.SHA256: {24: make([]byte, 32)}}, ReplayState{}, ReplayOptions{}); err == nil {
		t.Error("pcr 24 accepted")
	}
}
