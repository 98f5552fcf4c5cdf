// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/intactsec/intact/digest"
)

// fakeTPM simulates PCRs in the SHA-1 and SHA-256 banks.
type fakeTPM struct {
	mu       sync.Mutex
	pcrs     map[crypto.Hash]*[NumPCRs][]byte
	failNext bool // the next extend fails (after nothing was extended)
}

func newFakeTPM() *fakeTPM {
	t := &fakeTPM{pcrs: map[crypto.Hash]*[NumPCRs][]byte{}}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		var p [NumPCRs][]byte
		for i := range p {
			p[i] = make([]byte, h.Size())
		}
		t.pcrs[h] = &p
	}
	return t
}

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

var testBanks = AppendOptions{Banks: []crypto.Hash{crypto.SHA1, crypto.SHA256}}

func measurement(i int) FileMeasurement {
	d := make([]byte, 32)
	d[0] = byte(i)
	d[1] = byte(i >> 8)
	return FileMeasurement{Algo: digest.SHA256, Digest: d, Path: fmt.Sprintf("/bin/file %d", i)}
}

// replayFile parses the list file and replays it against the TPM.
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
	path := filepath.Join(t.TempDir(), "list")
	tpm := newFakeTPM()
	a, err := OpenAppender(path, tpm, testBanks)
	if err != nil {
		t.Fatal(err)
	}
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
	if len(v.Records) != 3 {
		t.Fatalf("verified %d records, want 3", len(v.Records))
	}
	if sig, _ := v.Records[2].Signature(); len(sig) != 10 {
		t.Errorf("ima-sig record signature %x", sig)
	}
	if name, _ := v.Records[1].Name(); name != "/bin/file 1" {
		t.Errorf("record 1 name %q", name)
	}
}

func TestAppendConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	tpm := newFakeTPM()
	a1, err := OpenAppender(path, tpm, testBanks)
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	// A second appender on its own file description: the two serialize
	// on flock as two processes would.
	a2, err := OpenAppender(path, tpm, testBanks)
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
	if v := replayFile(t, path, tpm); len(v.Records) != 200 {
		t.Errorf("verified %d records, want 200", len(v.Records))
	}
}

func TestAppendRecoversInterruptedExtend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	tpm := newFakeTPM()
	a, err := OpenAppender(path, tpm, testBanks)
	if err != nil {
		t.Fatal(err)
	}
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
	if v := replayFile(t, path, tpm); v.Prefix != 1 {
		t.Errorf("before recovery the PCR matched prefix %d, want 1", v.Prefix)
	}
	a, err = OpenAppender(path, tpm, testBanks)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Append(TemplateIMANG, measurement(3)); err != nil {
		t.Fatal(err)
	}
	if v := replayFile(t, path, tpm); len(v.Records) != 3 {
		t.Errorf("after recovery verified %d records, want 3", len(v.Records))
	}
}

func TestAppendCutsPartialRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	tpm := newFakeTPM()
	a, err := OpenAppender(path, tpm, testBanks)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Append(TemplateIMANG, measurement(1))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	whole := r.AppendBinary(nil)
	for _, cut := range []int{1, 4, 20, 30, 40, len(whole) - 1} {
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.Write(whole[:cut]) // a crash in the middle of a write
		f.Close()
		a, err = OpenAppender(path, tpm, testBanks)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		a.Close()
		if fi, _ := os.Stat(path); fi.Size() != int64(len(whole)) {
			t.Errorf("cut %d: list size %d after recovery, want %d", cut, fi.Size(), len(whole))
		}
	}
	if v := replayFile(t, path, tpm); len(v.Records) != 1 {
		t.Errorf("verified %d records, want 1", len(v.Records))
	}
}

func TestAppendRefusesDivergedPCR(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	tpm := newFakeTPM()
	a, err := OpenAppender(path, tpm, testBanks)
	if err != nil {
		t.Fatal(err)
	}
	a.Append(TemplateIMANG, measurement(1))
	a.Close()
	// Someone else extends the PCR (or the machine rebooted).
	tpm.ExtendPCR(DefaultPCR, map[crypto.Hash][]byte{crypto.SHA1: make([]byte, 20), crypto.SHA256: make([]byte, 32)})
	if _, err := OpenAppender(path, tpm, testBanks); !errors.Is(err, ErrDiverged) {
		t.Fatalf("OpenAppender on a diverged PCR: %v, want ErrDiverged", err)
	}
	// Garbage in the middle of the list is not a partial record.
	os.WriteFile(path, []byte("\x0b\x00\x00\x00garbage that is not a record at all, longer than a header"), 0o600)
	if _, err := OpenAppender(path, newFakeTPM(), testBanks); !errors.Is(err, ErrFormat) {
		t.Fatalf("OpenAppender on garbage: %v, want ErrFormat", err)
	}
}

func TestAppendBootRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	tpm := newFakeTPM()
	opts := testBanks
	opts.Boot = []byte("0b1e8c3a-boot-one")
	a, err := OpenAppender(path, tpm, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(TemplateIMANG, measurement(1)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	v := replayFile(t, path, tpm)
	if len(v.Records) != 2 {
		t.Fatalf("verified %d records, want the boot record and one more", len(v.Records))
	}
	first := v.Records[0]
	if name, _ := first.Name(); first.Template != TemplateIMABuf || name != BootRecordName {
		t.Errorf("first record %s %q, want ima-buf %s", first.Template, name, BootRecordName)
	}
	// Same boot: reopens. Another boot id: refused, even though the PCR
	// (here never reset) would match.
	a, err = OpenAppender(path, tpm, opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	opts.Boot = []byte("another-boot")
	if _, err := OpenAppender(path, tpm, opts); !errors.Is(err, ErrDiverged) {
		t.Fatalf("OpenAppender from another boot: %v, want ErrDiverged", err)
	}
	// A list of a single file record from an earlier boot is caught by
	// the PCR check because of its boot record: the fresh TPM's PCR is zero.
	opts.Boot = []byte("0b1e8c3a-boot-one")
	if _, err := OpenAppender(path, newFakeTPM(), opts); !errors.Is(err, ErrDiverged) {
		t.Fatalf("OpenAppender on a reset PCR: %v, want ErrDiverged", err)
	}
}
