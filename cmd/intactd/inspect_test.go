// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/policy"
	"github.com/intactsec/intact/sig"
)

// TestDaemonInspectorReadsOnce (issue 16 item 3): with the daemon's
// inspector over the real appraiser, one decision reads the file's content
// once, on every hook path: appraise, measure (ima-sig), audit, and all
// three under a sha512 signature, whose appraisal digest is not the
// measurement's sha256. What the process reads is counted by the kernel
// (rchar in /proc/self/io) over a 4 MiB file. The old engine read such a
// file twice (sha512 to appraise, sha256 again to measure) and read
// security.ima again for the ima-sig record.
func TestDaemonInspectorReadsOnce(t *testing.T) {
	testenv.RequireRoot(t) // security.ima
	if _, err := testenv.BytesRead(); err != nil {
		t.Fatalf("counting reads: %v", err)
	}
	const size = 4 << 20
	app, content, imaValue := signedContent(t, size)
	s256 := sha256.Sum256(content)

	for _, tc := range []struct {
		name, policy     string
		measured, audits bool
	}{
		{"appraise", "appraise func=BPRM_CHECK appraise_type=imasig\n", false, false},
		{"measure ima-sig", "measure func=BPRM_CHECK template=ima-sig\n", true, false},
		{"audit", "audit func=BPRM_CHECK\n", false, true},
		{"appraise measure audit", "appraise func=BPRM_CHECK appraise_type=imasig\nmeasure func=BPRM_CHECK template=ima-sig\naudit func=BPRM_CHECK\n", true, true},
		{"appraise audit", "appraise func=BPRM_CHECK appraise_type=imasig\naudit func=BPRM_CHECK\n", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := labelledFile(t, content, imaValue)
			src, meas, logs, _ := startEngine(t, app, tc.policy)
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			before, _ := testenv.BytesRead()
			allow := src.decide(t, enforce.Event{Fd: fd, Pid: 4242, Exec: true})
			after, _ := testenv.BytesRead()
			if !allow {
				t.Fatalf("signed file denied: %s", logs.String())
			}
			// Everything a decision reads is read before its answer.
			if n := after - before; n < size || n >= 2*size {
				t.Errorf("one decision read %d bytes of a %d-byte file (%.2f times), want it read once", n, size, float64(n)/size)
			}
			ms := meas.all()
			if tc.measured {
				if len(ms) != 1 || !bytes.Equal(ms[0].Digest, s256[:]) || ms[0].Algo != digest.SHA256 || !bytes.Equal(ms[0].Sig, imaValue) {
					t.Errorf("measurements = %+v, want the sha256 and the signature", ms)
				}
			} else if len(ms) != 0 {
				t.Errorf("measured: %+v", ms)
			}
			if tc.audits {
				want := `"sha256":"` + hex.EncodeToString(s256[:]) + `"`
				if !waitFor(20*time.Second, func() bool { return strings.Contains(logs.String(), want) }) {
					t.Errorf("no audit record with the content's sha256: %s", logs.String())
				}
			}
		})
	}
}

// signedContent returns an appraiser trusting a new key and random
// content of size bytes with its security.ima value: a sha512 signature
// by that key.
func signedContent(t testing.TB, size int) (*appraise.Appraiser, []byte, []byte) {
	t.Helper()
	key, err := sig.GenerateKey("ec-p256")
	if err != nil {
		t.Fatal(err)
	}
	der, err := sig.CreateCertificate(key, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyID, err := sig.KeyID(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	content := make([]byte, size)
	rand.Read(content)
	s512 := sha512.Sum512(content)
	sg, err := sig.SignDigest(key, keyID, digest.SHA512, s512[:])
	if err != nil {
		t.Fatal(err)
	}
	return appraise.New(appraise.Options{Keys: sig.NewKeyring(cert)}), content, sg.Marshal()
}

// labelledFile writes content with the security.ima value ima.
func labelledFile(t testing.TB, content, ima []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := xattr.Set(path, xattr.IMA(false), ima); err != nil {
		t.Fatal(err)
	}
	return path
}

// startEngine runs an engine with the daemon's inspector over app under
// pol, with no kernel cache, until the test ends.
func startEngine(t testing.TB, app *appraise.Appraiser, pol string) (*oneShotSource, *recordingMeasurer, *lockedBuffer, *enforce.Engine) {
	t.Helper()
	p, err := policy.Parse("test", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	src := newOneShotSource()
	meas := &recordingMeasurer{}
	logs := &lockedBuffer{}
	cfg := enforce.Config{Policy: p, Mode: enforce.Enforce, Measurer: meas, DefaultPCR: 13,
		Deadline: time.Minute, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
	cfg.Inspector = fileInspector{app}
	eng, err := enforce.New(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(context.Background()) }()
	t.Cleanup(func() {
		eng.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return src, meas, logs, eng
}

// BenchmarkDecide: one decision (cache dropped before each) on a 1 MiB
// file signed with sha512, by the daemon's inspector and the real
// appraiser, under policies that appraise, measure (sha256) and audit.
// Needs root (security.ima).
func BenchmarkDecide(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (security.ima)")
	}
	app, content, ima := signedContent(b, 1<<20)
	path := labelledFile(b, content, ima)
	for _, bc := range []struct{ name, policy string }{
		{"appraise", "appraise func=BPRM_CHECK appraise_type=imasig\n"},
		{"appraise+measure+audit", "appraise func=BPRM_CHECK appraise_type=imasig\nmeasure func=BPRM_CHECK template=ima-sig\naudit func=BPRM_CHECK\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			src, _, _, eng := startEngine(b, app, bc.policy)
			b.SetBytes(int64(len(content)))
			// CPU time (the process's, all threads) per decision: on a
			// shared machine, far steadier than the wall time.
			cpu0 := testenv.CPUTime()
			for b.Loop() {
				eng.InvalidateAll()
				fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				if !src.decide(b, enforce.Event{Fd: fd, Pid: 4242, Exec: true}) {
					b.Fatal("denied")
				}
			}
			b.ReportMetric(float64(testenv.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// oneShotSource is an enforce.EventSource fed one event at a time.
type oneShotSource struct {
	events    chan []enforce.Event
	answers   chan bool
	interrupt chan struct{}
	once      sync.Once
}

func newOneShotSource() *oneShotSource {
	return &oneShotSource{events: make(chan []enforce.Event, 1), answers: make(chan bool, 1), interrupt: make(chan struct{})}
}

func (s *oneShotSource) Next() ([]enforce.Event, error) {
	select {
	case evs := <-s.events:
		return evs, nil
	case <-s.interrupt:
		return nil, enforce.ErrInterrupted
	}
}

func (s *oneShotSource) Interrupt()                       { s.once.Do(func() { close(s.interrupt) }) }
func (s *oneShotSource) Respond(fd int, allow bool) error { s.answers <- allow; return nil }
func (s *oneShotSource) Ignore(int, bool) error           { return nil }
func (s *oneShotSource) Unignore(int) error               { return nil }
func (s *oneShotSource) UnignoreAll() error               { return nil }

func (s *oneShotSource) decide(t testing.TB, ev enforce.Event) bool {
	t.Helper()
	s.events <- []enforce.Event{ev}
	select {
	case a := <-s.answers:
		return a
	case <-time.After(time.Minute):
		t.Fatal("no answer")
		return false
	}
}

type recordingMeasurer struct {
	mu sync.Mutex
	ms []enforce.Measurement
}

func (m *recordingMeasurer) Measure(x enforce.Measurement) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ms = append(m.ms, x)
	return nil
}

func (m *recordingMeasurer) all() []enforce.Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]enforce.Measurement(nil), m.ms...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
