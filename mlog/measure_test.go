// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/intactsec/intact/digest"
)

// fakeTPM simulates PCRs in the SHA-1 and SHA-256 banks (or those
// given); its boot PCRs 0-9 hold a value of their index.
type fakeTPM struct {
	mu       sync.Mutex
	banks    []crypto.Hash
	pcrs     map[crypto.Hash]*[NumPCRs][]byte
	failNext bool // the next extend fails (after nothing was extended)
}

func newFakeTPM(banks ...crypto.Hash) *fakeTPM {
	if len(banks) == 0 {
		banks = []crypto.Hash{crypto.SHA1, crypto.SHA256}
	}
	t := &fakeTPM{banks: banks, pcrs: map[crypto.Hash]*[NumPCRs][]byte{}}
	for _, h := range banks {
		var p [NumPCRs][]byte
		for i := range p {
			p[i] = make([]byte, h.Size())
			if i < 10 {
				p[i][0] = byte(i + 1) // a boot measured something
			}
		}
		t.pcrs[h] = &p
	}
	return t
}

func (t *fakeTPM) BankHashes() ([]crypto.Hash, error) { return t.banks, nil }

func (t *fakeTPM) ExtendPCR(pcr int, digests map[crypto.Hash][]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failNext {
		t.failNext = false
		return errors.New("fake tpm: extend failed")
	}
	if len(digests) != len(t.pcrs) {
		return fmt.Errorf("fake tpm: %d digests for %d banks", len(digests), len(t.pcrs))
	}
	for h, d := range digests {
		p := t.pcrs[h]
		hh := h.New()
		hh.Write(p[pcr])
		hh.Write(d)
		p[pcr] = hh.Sum(nil)
	}
	return nil
}

func (t *fakeTPM) ReadPCRs(bank crypto.Hash, pcrs []int) (map[int][]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int][]byte{}
	for _, i := range pcrs {
		out[i] = append([]byte(nil), t.pcrs[bank][i]...)
	}
	return out, nil
}

func (t *fakeTPM) values(pcr int) digest.PCRs {
	v1, _ := t.ReadPCRs(crypto.SHA1, []int{pcr})
	v256, _ := t.ReadPCRs(crypto.SHA256, []int{pcr})
	return digest.PCRs{digest.SHA1: v1, digest.SHA256: v256}
}

// testOpts: the default PCR, a fixed boot id.
var testOpts = MeasureOptions{Boot: []byte("0b1e8c3a-boot-one")}

// start is the number of records a Measurer starts a list with: its
// boot_aggregate and its boot id.
const start = 2

func measurement(i int) FileMeasurement {
	d := make([]byte, 32)
	d[0] = byte(i)
	d[1] = byte(i >> 8)
	return FileMeasurement{Algo: digest.SHA256, Digest: d, Path: fmt.Sprintf("/bin/file %d", i)}
}

// replayFile parses the list file and replays it against the TPM.
// newList opens a Measurer on a new list in a temporary directory, over
// a fake TPM; the test closes it.
func newList(t *testing.T) (path string, tpm *fakeTPM, m *Measurer) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "list")
	tpm = newFakeTPM()
	m, err := OpenMeasurer(path, tpm, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	return path, tpm, m
}

func replayFile(t *testing.T, path string, tpm *fakeTPM) *Verified {
	t.Helper()
	l, err := ReadFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := l.Replay(tpm.values(DefaultPCR))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAppendReplays(t *testing.T) {
	path, tpm, a := newList(t)
	defer a.Close()
	for i := range 3 {
		tmpl := TemplateIMANG
		m := measurement(i)
		if i == 2 {
			tmpl, m.Sig = TemplateIMASig, []byte{3, 2, 4, 1, 2, 3, 4, 0, 1, 0xaa}
		}
		if _, err := a.Append(tmpl, m); err != nil {
			t.Fatal(err)
		}
	}
	v := replayFile(t, path, tpm)
	if len(v.Records) != start+3 {
		t.Fatalf("verified %d records, want %d", len(v.Records), start+3)
	}
	if sig, _ := v.Records[start+2].Signature(); len(sig) != 10 {
		t.Errorf("ima-sig record signature %x", sig)
	}
	if name, _ := v.Records[start+1].Name(); name != "/bin/file 1" {
		t.Errorf("record 1 name %q", name)
	}
}

func TestAppendConcurrent(t *testing.T) {
	path, tpm, a1 := newList(t)
	defer a1.Close()
	// A second measurer on its own file description: the two serialize
	// on flock as two processes would.
	a2, err := OpenMeasurer(path, tpm, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := a1
			if g%2 == 1 {
				a = a2
			}
			for i := range 25 {
				if _, err := a.Append(TemplateIMANG, measurement(g*100+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v := replayFile(t, path, tpm); len(v.Records) != start+200 {
		t.Errorf("verified %d records, want %d", len(v.Records), start+200)
	}
}

func TestAppendRecoversInterruptedExtend(t *testing.T) {
	path, tpm, a := newList(t)
	if _, err := a.Append(TemplateIMANG, measurement(1)); err != nil {
		t.Fatal(err)
	}
	tpm.failNext = true // as if the process died after the write
	if _, err := a.Append(TemplateIMANG, measurement(2)); err == nil {
		t.Fatal("Append with a failing extend succeeded")
	}
	if _, err := a.Append(TemplateIMANG, measurement(3)); !errors.Is(err, ErrBroken) {
		t.Fatalf("Append after a failed extend: %v, want ErrBroken", err)
	}
	a.Close()
	// The list is one record ahead of the PCR: it replays to a prefix.
	if v := replayFile(t, path, tpm); v.Prefix != start+1 {
		t.Errorf("before recovery the PCR matched prefix %d, want %d", v.Prefix, start+1)
	}
	a, err := OpenMeasurer(path, tpm, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Append(TemplateIMANG, measurement(3)); err != nil {
		t.Fatal(err)
	}
	if v := replayFile(t, path, tpm); len(v.Records) != start+3 {
		t.Errorf("after recovery verified %d records, want %d", len(v.Records), start+3)
	}
}

func TestAppendCutsPartialRecord(t *testing.T) {
	path, tpm, a := newList(t)
	r, err := a.Append(TemplateIMANG, measurement(1))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	whole := r.AppendBinary(nil)
	for _, cut := range []int{1, 4, 20, 30, 40, len(whole) - 1} {
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(whole[:cut]) // a crash in the middle of a write
		f.Close()
		a, err = OpenMeasurer(path, tpm, testOpts)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		a.Close()
		if fi, _ := os.Stat(path); fi.Size() != size {
			t.Errorf("cut %d: list size %d after recovery, want %d", cut, fi.Size(), size)
		}
	}
	if v := replayFile(t, path, tpm); len(v.Records) != start+1 {
		t.Errorf("verified %d records, want %d", len(v.Records), start+1)
	}
}

func TestAppendRefusesDivergedPCR(t *testing.T) {
	path, tpm, a := newList(t)
	a.Append(TemplateIMANG, measurement(1))
	a.Close()
	// Someone else extends the PCR (or the machine rebooted).
	tpm.ExtendPCR(DefaultPCR, map[crypto.Hash][]byte{crypto.SHA1: make([]byte, 20), crypto.SHA256: make([]byte, 32)})
	if _, err := OpenMeasurer(path, tpm, testOpts); !errors.Is(err, ErrDiverged) {
		t.Fatalf("OpenMeasurer on a diverged PCR: %v, want ErrDiverged", err)
	}
	// Garbage in the middle of the list is not a partial record.
	os.WriteFile(path, []byte("\x0b\x00\x00\x00garbage that is not a record at all, longer than a header"), 0o600)
	if _, err := OpenMeasurer(path, newFakeTPM(), testOpts); !errors.Is(err, ErrFormat) {
		t.Fatalf("OpenMeasurer on garbage: %v, want ErrFormat", err)
	}
}

// TestMeasurerStartsList: a new list starts with the boot_aggregate of
// the TPM's boot PCRs (as the kernel's list does, on the list's PCR),
// then the boot id; reopening in the same boot adds neither again.
func TestMeasurerStartsList(t *testing.T) {
	for _, banks := range [][]crypto.Hash{{crypto.SHA1, crypto.SHA256}, {crypto.SHA1}} {
		path := filepath.Join(t.TempDir(), "list")
		tpm := newFakeTPM(banks...)
		opts := testOpts
		opts.PCR = 11
		for range 2 { // the second open finds the list started
			a, err := OpenMeasurer(path, tpm, opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Append(TemplateIMANG, measurement(1)); err != nil {
				t.Fatal(err)
			}
			a.Close()
		}
		l, err := ReadFile(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		recs := l.UnverifiedRecords()
		if len(recs) != start+2 {
			t.Fatalf("%v: %d records, want %d", banks, len(recs), start+2)
		}
		ba, boot := recs[0], recs[1]
		bank := digest.SHA256
		if len(banks) == 1 {
			bank = digest.SHA1 // the kernel's fallback without a SHA-256 bank
		}
		h, _ := bank.CryptoHash()
		vals, _ := tpm.ReadPCRs(h, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
		want, err := BootAggregate(bank, vals)
		if err != nil {
			t.Fatal(err)
		}
		if name, _ := ba.Name(); name != BootAggregateName || ba.PCR != 11 || ba.Template != TemplateIMANG {
			t.Errorf("%v: record 0 is %s %q on pcr %d, want ima-ng boot_aggregate on pcr 11", banks, ba.Template, name, ba.PCR)
		}
		if algo, d, _ := ba.FileDigest(); algo != bank.String() || !bytes.Equal(d, want) {
			t.Errorf("%v: boot_aggregate %s:%x, want %s:%x", banks, algo, d, bank, want)
		}
		if name, _ := boot.Name(); name != BootRecordName || boot.Template != TemplateIMABuf || boot.PCR != 11 {
			t.Errorf("%v: record 1 is %s %q, want ima-buf %s", banks, boot.Template, name, BootRecordName)
		}
		if f, _ := boot.field("buf"); !bytes.Equal(f.Data, opts.Boot) {
			t.Errorf("%v: boot record holds %q, want %q", banks, f.Data, opts.Boot)
		}
		pcrs := digest.PCRs{digest.SHA1: {}}
		for _, hh := range banks {
			a, _ := digest.AlgoFor(hh)
			v, _ := tpm.ReadPCRs(hh, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11})
			pcrs[a] = v
		}
		if err := l.CheckBootAggregate(pcrs); err != nil {
			t.Errorf("%v: CheckBootAggregate: %v", banks, err)
		}
		if v, err := l.Replay(digest.PCRs{bank: {11: pcrs[bank][11]}}); err != nil || len(v.Records) != len(recs) {
			t.Errorf("%v: replay: %v", banks, err)
		}
	}
}

// TestMeasurerFinishesStart: a list left with only its boot_aggregate (a
// crash between the two start records, or a list an older intactd or
// agent started) gets its boot record when it is opened.
func TestMeasurerFinishesStart(t *testing.T) {
	path, _, a := newList(t)
	a.Close()
	l, err := ReadFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ba := l.UnverifiedRecords()[0]
	// Rebuild the list as a crash after the first record leaves it.
	tpm := newFakeTPM()
	if err := tpm.ExtendPCR(DefaultPCR, extendDigests(t, &ba, tpm.banks)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, ba.AppendBinary(nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, err = OpenMeasurer(path, tpm, testOpts); err != nil {
		t.Fatal(err)
	}
	a.Close()
	v := replayFile(t, path, tpm)
	if len(v.Records) != start {
		t.Fatalf("%d records, want %d", len(v.Records), start)
	}
	if name, _ := v.Records[1].Name(); name != BootRecordName {
		t.Errorf("record 1 is %q, want the boot record", name)
	}
}

func extendDigests(t *testing.T, r *Record, banks []crypto.Hash) map[crypto.Hash][]byte {
	t.Helper()
	out := map[crypto.Hash][]byte{}
	for _, h := range banks {
		a, _ := digest.AlgoFor(h)
		d, err := r.ExtendDigest(a)
		if err != nil {
			t.Fatal(err)
		}
		out[h] = d
	}
	return out
}

func TestAppendBootRecord(t *testing.T) {
	path, tpm, a := newList(t)
	if _, err := a.Append(TemplateIMANG, measurement(1)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	v := replayFile(t, path, tpm)
	if len(v.Records) != start+1 {
		t.Fatalf("verified %d records, want the start records and one more", len(v.Records))
	}
	if r := v.Records[1]; r.Template != TemplateIMABuf {
		t.Errorf("record 1 %s, want ima-buf", r.Template)
	}
	// Same boot: reopens. Another boot id: refused, even though the PCR
	// (here never reset) would match.
	opts := testOpts
	a, err := OpenMeasurer(path, tpm, opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	opts.Boot = []byte("another-boot")
	if _, err := OpenMeasurer(path, tpm, opts); !errors.Is(err, ErrDiverged) {
		t.Fatalf("OpenMeasurer from another boot: %v, want ErrDiverged", err)
	}
	// A list from an earlier boot is caught by the PCR check too: the
	// fresh TPM's PCR is zero.
	opts.Boot = []byte("0b1e8c3a-boot-one")
	if _, err := OpenMeasurer(path, newFakeTPM(), opts); !errors.Is(err, ErrDiverged) {
		t.Fatalf("OpenMeasurer on a reset PCR: %v, want ErrDiverged", err)
	}
	// A list "intact measure" wrote before lists started with a
	// boot_aggregate: its boot record is its first record, and checked.
	old := filepath.Join(t.TempDir(), "old")
	tpm = newFakeTPM()
	r, err := NewBufferRecord(DefaultPCR, BootRecordName, []byte("0b1e8c3a-boot-one"), digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	tpm.ExtendPCR(DefaultPCR, extendDigests(t, &r, tpm.banks))
	os.WriteFile(old, r.AppendBinary(nil), 0o600)
	if a, err := OpenMeasurer(old, tpm, testOpts); err != nil {
		t.Fatalf("old list, same boot: %v", err)
	} else {
		a.Close()
	}
	if _, err := OpenMeasurer(old, tpm, opts); err != nil {
		t.Fatal(err)
	}
	opts.Boot = []byte("another-boot")
	if _, err := OpenMeasurer(old, tpm, opts); !errors.Is(err, ErrDiverged) {
		t.Fatalf("old list from another boot: %v, want ErrDiverged", err)
	}
}

// TestKernelBootID: the id is read, without its newline.
func TestKernelBootID(t *testing.T) {
	b, err := KernelBootID()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 36 || bytes.ContainsAny(b, "\n ") {
		t.Errorf("boot id %q", b)
	}
}

// TestRecordCheckBootAggregate: the one boot_aggregate check, on a
// record: a matching digest passes; another digest is ErrBootAggregate;
// values of another bank only, or a record that is not a boot_aggregate,
// fail without being taken for a match.
func TestRecordCheckBootAggregate(t *testing.T) {
	tpm := newFakeTPM()
	vals, _ := tpm.ReadPCRs(crypto.SHA256, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	ba, _ := BootAggregate(digest.SHA256, vals)
	r, err := NewRecord(DefaultPCR, TemplateIMANG, FileMeasurement{Algo: digest.SHA256, Digest: ba, Path: BootAggregateName}, digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	if bank, err := r.CheckBootAggregate(digest.PCRs{digest.SHA256: vals}); err != nil || bank != digest.SHA256 {
		t.Fatalf("matching boot_aggregate: %v, %v", bank, err)
	}
	other := maps.Clone(vals)
	other[4] = make([]byte, 32)
	if _, err := r.CheckBootAggregate(digest.PCRs{digest.SHA256: other}); !errors.Is(err, ErrBootAggregate) {
		t.Errorf("other boot pcrs: %v, want ErrBootAggregate", err)
	}
	sha1, _ := tpm.ReadPCRs(crypto.SHA1, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if _, err := r.CheckBootAggregate(digest.PCRs{digest.SHA1: sha1}); err == nil || errors.Is(err, ErrBootAggregate) {
		t.Errorf("sha1 values for a sha256 boot_aggregate: %v", err)
	}
	file := measurement(1)
	f, _ := NewRecord(DefaultPCR, TemplateIMANG, file, digest.SHA1)
	if _, err := f.CheckBootAggregate(digest.PCRs{digest.SHA256: vals}); err == nil {
		t.Error("a file record passed as a boot_aggregate")
	}
}
