// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/policy"
)

// fakeSource feeds events from a channel and records answers.
type fakeSource struct {
	events    chan []Event
	interrupt chan struct{}
	once      sync.Once
	mu        sync.Mutex
	waiting   map[int]chan bool
	ignored   map[int]int // fd -> calls
	ignores   atomic.Int32
	unignores atomic.Int32
}

func newFakeSource() *fakeSource {
	return &fakeSource{events: make(chan []Event, 64), interrupt: make(chan struct{}),
		waiting: map[int]chan bool{}, ignored: map[int]int{}}
}

func (s *fakeSource) Next() ([]Event, error) {
	select {
	case evs := <-s.events:
		return evs, nil
	case <-s.interrupt:
		return nil, ErrInterrupted
	}
}

func (s *fakeSource) Interrupt() { s.once.Do(func() { close(s.interrupt) }) }

func (s *fakeSource) Respond(fd int, allow bool) error {
	s.mu.Lock()
	ch, ok := s.waiting[fd]
	delete(s.waiting, fd)
	s.mu.Unlock()
	if !ok {
		return errors.New("no such event")
	}
	ch <- allow
	return nil
}

func (s *fakeSource) Ignore(fd int, exec bool) error { s.ignores.Add(1); return nil }
func (s *fakeSource) Unignore(fd int) error          { s.unignores.Add(1); return nil }
func (s *fakeSource) UnignoreAll() error             { s.unignores.Add(1); return nil }

// submit sends an event for path by pid and returns its answer channel.
func (s *fakeSource) submit(t *testing.T, path string, exec bool, pid int32) chan bool {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan bool, 1)
	s.mu.Lock()
	s.waiting[fd] = ch
	s.mu.Unlock()
	s.events <- []Event{{Fd: fd, Pid: pid, Exec: exec}}
	return ch
}

func (s *fakeSource) decide(t *testing.T, path string, exec bool) bool {
	t.Helper()
	select {
	case a := <-s.submit(t, path, exec, 4242):
		return a
	case <-time.After(10 * time.Second):
		t.Fatalf("no answer for %s", path)
		return false
	}
}

// fakeInspector judges by content: "good" signed ok, "digest" unsigned
// ok, "reuse" signed ok with a made-up digest, "slow" sleeps, "nolabel"
// fails without reading the content (as an appraisal of a file without a
// label does), anything else content-changed. It plays a real
// Inspector's reads: an appraisal that passes or finds the content
// changed reads the content once, and computes the digests asked for in
// that read; digests asked for outside an appraisal are one read. Every
// content read is counted.
type fakeInspector struct {
	calls    atomic.Int32 // appraisals
	inspects atomic.Int32 // Inspect calls
	reads    atomic.Int32 // content reads
	sleep    time.Duration
	mu       sync.Mutex
	needs    []Need
}

// Labels the fake hands back: a sha512 signature (type 0x03) and a
// sha256 digest.
var (
	fakeSigLabel    = []byte{0x03, 2, 6, 0xde, 0xad, 0xbe, 0xef, 0, 2, 0x30, 0x00}
	fakeDigestLabel = append([]byte{0x04, 4}, bytes.Repeat([]byte{0x11}, 32)...)
)

func (a *fakeInspector) Inspect(f *os.File, path string, need Need) Inspection {
	a.inspects.Add(1)
	a.mu.Lock()
	a.needs = append(a.needs, need)
	a.mu.Unlock()
	var in Inspection
	b := make([]byte, 16)
	n, _ := f.ReadAt(b, 0) // the fake's peek at what the file plays
	c := string(b[:n])
	// read reads the content once, digesting it with algos.
	read := func(algos ...digest.Algo) {
		a.reads.Add(1)
		content, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
		if err != nil {
			in.Err = err
			return
		}
		for _, algo := range algos {
			if in.Digest(algo) != nil {
				continue
			}
			h, _ := algo.CryptoHash()
			x := h.New()
			x.Write(content)
			in.Digests = append(in.Digests, digest.Sum{Algo: algo, Bytes: x.Sum(nil)})
		}
	}
	lab := fakeSigLabel
	switch {
	case strings.HasPrefix(c, "digest"):
		lab = fakeDigestLabel
	case strings.HasPrefix(c, "nolabel"):
		lab = nil
	}
	if need.Label || need.Appraise {
		in.Label = lab
	}
	if !need.Appraise {
		if len(need.Digests) > 0 {
			read(need.Digests...)
		}
		return in
	}
	a.calls.Add(1)
	switch {
	case strings.HasPrefix(c, "nolabel"):
		in.Appraisal = Appraisal{Verdict: "no-label", Reason: "no security.ima label"}
		return in // the content is not read
	case strings.HasPrefix(c, "good"):
		in.Appraisal = Appraisal{OK: true, Signed: true, Verdict: "ok"}
	case strings.HasPrefix(c, "digest"):
		in.Appraisal = Appraisal{OK: true, Verdict: "ok"}
	case strings.HasPrefix(c, "reuse"):
		in.Appraisal = Appraisal{OK: true, Signed: true, Verdict: "ok"}
		a.reads.Add(1)
		in.Digests = []digest.Sum{{Algo: measureAlgo, Bytes: bytes.Repeat([]byte{0xaa}, 32)}}
		return in
	case strings.HasPrefix(c, "slow"):
		time.Sleep(a.sleep) // time under test: an appraisal that takes this long
		in.Appraisal = Appraisal{OK: true, Signed: true, Verdict: "ok"}
	default:
		in.Appraisal = Appraisal{Verdict: "content-changed", Reason: "digest differs"}
	}
	// The label's algorithm (sha512 for the signature, sha256 for the
	// digest label), and what was asked for, in one read.
	labelAlgo := digest.SHA512
	if lab[0] == 0x04 {
		labelAlgo = digest.Algo(lab[1])
	}
	read(append([]digest.Algo{labelAlgo}, need.Digests...)...)
	return in
}

type fakeMeasurer struct {
	mu  sync.Mutex
	ms  []Measurement
	err error
}

func (m *fakeMeasurer) all() []Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Measurement(nil), m.ms...)
}

func (m *fakeMeasurer) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.err = err
}

func (m *fakeMeasurer) Measure(x Measurement) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.ms = append(m.ms, x)
	return nil
}

type harness struct {
	src  *fakeSource
	eng  *Engine
	app  *fakeInspector
	meas *fakeMeasurer
	logs *bytes.Buffer
	mu   *sync.Mutex // guards logs
	dir  string
	done chan error
}

func start(t *testing.T, pol string, mut func(*Config)) *harness {
	t.Helper()
	p, err := policy.Parse("test.policy", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{src: newFakeSource(), app: &fakeInspector{}, meas: &fakeMeasurer{},
		logs: &bytes.Buffer{}, dir: t.TempDir(), done: make(chan error, 1)}
	h.mu = &sync.Mutex{}
	cfg := Config{Policy: p, Mode: Enforce, Inspector: h.app, Measurer: h.meas, DefaultPCR: 11,
		Deadline: 2 * time.Second, KernelCache: true,
		Logger: slog.New(slog.NewJSONHandler(lockedWriter{h.mu, h.logs}, nil))}
	if mut != nil {
		mut(&cfg)
	}
	h.eng, err = New(h.src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- h.eng.Run(context.Background()) }()
	t.Cleanup(func() {
		h.eng.Stop()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after Stop")
		}
	})
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (h *harness) file(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// records returns the JSON log records with msg. Records are written
// after the answer, so it waits (up to 10 s, for a loaded machine) until
// there is at least one; every caller expects one or more.
func (h *harness) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	testenv.Until(10*time.Second, func() bool {
		out = nil
		h.mu.Lock()
		text := h.logs.String()
		h.mu.Unlock()
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				out = append(out, m)
			}
		}
		return len(out) > 0
	})
	return out
}

const execPolicy = "appraise func=BPRM_CHECK appraise_type=imasig\n"

func TestEnforceExec(t *testing.T) {
	h := start(t, execPolicy, nil)
	good, bad := h.file(t, "good", "good binary"), h.file(t, "bad", "tampered")
	if !h.src.decide(t, good, true) {
		t.Error("signed file denied")
	}
	if h.src.decide(t, bad, true) {
		t.Error("tampered file allowed")
	}
	if !h.src.decide(t, bad, false) {
		t.Error("plain open of a tampered file denied by an exec-only policy")
	}
	recs := h.records(t, "denied")
	if len(recs) != 1 {
		t.Fatalf("denial records = %d, want 1", len(recs))
	}
	r := recs[0]
	if r["path"] != bad || r["pid"] != float64(4242) || r["exe"] == nil || r["hook"] != "exec" ||
		r["rule"] != "appraise func=BPRM_CHECK appraise_type=imasig" || r["rule_line"] != float64(1) ||
		!strings.Contains(r["reason"].(string), "content-changed") || r["audit"] != true {
		t.Errorf("denial record = %v", r)
	}
	eventually(t, func() bool { return h.eng.Stats().Decisions == 3 }, "three decisions")
	if s := h.eng.Stats(); s.Denials != 1 || s.Decisions != 3 {
		t.Errorf("stats = %+v", s)
	}
}

func TestLogMode(t *testing.T) {
	h := start(t, execPolicy, func(c *Config) { c.Mode = Log })
	bad := h.file(t, "bad", "tampered")
	if !h.src.decide(t, bad, true) {
		t.Error("log mode denied")
	}
	if recs := h.records(t, "would deny"); len(recs) != 1 || recs[0]["mode"] != "log" || recs[0]["decision"] != "allow" {
		t.Errorf("would-deny records = %v", recs)
	}
	eventually(t, func() bool { return h.eng.Stats().WouldDeny == 1 }, "one would-deny")
	if s := h.eng.Stats(); s.WouldDeny != 1 || s.Denials != 0 {
		t.Errorf("stats = %+v", s)
	}
	if h.src.ignores.Load() != 0 {
		t.Error("a failing file was cached in the kernel in log mode")
	}
}

func TestSignatureRequired(t *testing.T) {
	h := start(t, execPolicy+"appraise func=FILE_CHECK\n", nil)
	d := h.file(t, "d", "digest only")
	if h.src.decide(t, d, true) {
		t.Error("digest label accepted under appraise_type=imasig")
	}
	if !h.src.decide(t, d, false) {
		t.Error("digest label refused without appraise_type=imasig")
	}
}

func TestCacheAndInvalidation(t *testing.T) {
	h := start(t, execPolicy, nil)
	good := h.file(t, "good", "good binary")
	for range 3 {
		if !h.src.decide(t, good, true) {
			t.Fatal("denied")
		}
	}
	if n := h.app.calls.Load(); n != 1 {
		t.Errorf("appraiser calls for three execs = %d, want 1", n)
	}
	// The mark is placed after the answer (kernelCache runs once the
	// exec is let go): wait for it rather than expect it already.
	eventually(t, func() bool { return h.src.ignores.Load() >= 1 }, "a kernel ignore mark for a verified file")
	// Changing the file changes its fingerprint: appraised again.
	os.WriteFile(good, []byte("tampered now"), 0o755)
	if h.src.decide(t, good, true) {
		t.Error("file changed while cached was allowed")
	}
	// Changing only attributes (ctime) also misses the cache.
	os.WriteFile(good, []byte("good again"), 0o755)
	h.src.decide(t, good, true)
	before := h.app.calls.Load()
	os.Chmod(good, 0o755|os.ModeSetuid)
	ign := h.src.ignores.Load()
	h.src.decide(t, good, true)
	if h.app.calls.Load() != before+1 {
		t.Error("chmod did not invalidate the cached verdict")
	}
	// Invalidate drops the entry and the kernel mark.
	var st unix.Stat_t
	unix.Stat(good, &st)
	// Let the worker finish its kernel-cache step (the mark comes after
	// the answer), so Invalidate has a mark to drop.
	eventually(t, func() bool { return h.src.ignores.Load() > ign }, "the kernel ignore mark after the chmod")
	unig := h.src.unignores.Load()
	h.eng.Invalidate(-1, st.Dev, st.Ino)
	h.src.decide(t, good, true)
	if h.app.calls.Load() != before+2 || h.src.unignores.Load() != unig+1 {
		t.Errorf("Invalidate: calls %d unignores %d", h.app.calls.Load()-before, h.src.unignores.Load()-unig)
	}
	if s := h.eng.Stats(); s.CacheHits < 2 {
		t.Errorf("cache hits = %d", s.CacheHits)
	}
}

func TestSubjectDependentNotCachedInKernel(t *testing.T) {
	h := start(t, "appraise func=BPRM_CHECK euid=0\n", nil)
	good := h.file(t, "good", "good binary")
	h.src.decide(t, good, true)
	h.src.decide(t, good, true)
	if h.src.ignores.Load() != 0 {
		t.Error("kernel ignore mark with a credential-dependent policy")
	}
}

func TestDeadline(t *testing.T) {
	for _, failAllow := range []bool{false, true} {
		h := start(t, execPolicy, func(c *Config) { c.Deadline = 100 * time.Millisecond; c.FailAllow = failAllow })
		h.app.sleep = time.Second
		slow := h.file(t, "slow", "slow file")
		t0 := time.Now()
		if got := h.src.decide(t, slow, true); got != failAllow {
			t.Errorf("FailAllow=%v: answer %v", failAllow, got)
		}
		if el := time.Since(t0); el > 600*time.Millisecond {
			t.Errorf("answered after %v, deadline 100ms", el)
		}
		eventually(t, func() bool { return h.eng.Stats().Timeouts == 1 }, "one timeout counted")
	}
}

func TestSelfAllowedAtOnce(t *testing.T) {
	h := start(t, execPolicy, nil)
	bad := h.file(t, "bad", "tampered")
	select {
	case a := <-h.src.submit(t, bad, true, int32(os.Getpid())):
		if !a {
			t.Error("own event denied")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("own event not answered")
	}
	// Events carry thread ids: another thread of the daemon is the daemon.
	// Two goroutines locked to their threads at once: one of them is not
	// the main thread.
	tids := make(chan int32)
	release := make(chan struct{})
	defer close(release)
	for range 2 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids <- int32(unix.Gettid())
			<-release
		}()
	}
	tid := <-tids
	if other := <-tids; tid == int32(os.Getpid()) {
		tid = other
	}
	select {
	case a := <-h.src.submit(t, bad, true, tid):
		if !a {
			t.Error("own thread's event denied")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("own thread's event not answered")
	}
	if h.app.calls.Load() != 0 {
		t.Error("own event appraised")
	}
}

func TestMeasure(t *testing.T) {
	h := start(t, "measure func=BPRM_CHECK\nmeasure func=FILE_CHECK pcr=12 template=ima-sig\n", nil)
	f := h.file(t, "bin", "some binary")
	h.src.decide(t, f, true)
	h.src.decide(t, f, true)
	h.src.decide(t, f, false)
	want := sha256.Sum256([]byte("some binary"))
	ms := h.meas.all()
	if len(ms) != 2 {
		t.Fatalf("measurements = %+v, want 2 (once per pcr)", ms)
	}
	m := ms[0]
	if m.PCR != 11 || m.Template != "ima-ng" || m.Path != f || !bytes.Equal(m.Digest, want[:]) {
		t.Errorf("measurement = %+v", m)
	}
	if m := ms[1]; m.PCR != 12 || m.Template != "ima-sig" {
		t.Errorf("measurement = %+v", m)
	}
	h.meas.fail(errors.New("tpm gone"))
	g := h.file(t, "other", "other")
	if h.src.decide(t, g, true) {
		t.Error("allowed although the measurement failed (fail verdict is deny)")
	}
	if recs := h.records(t, "decision failed, fail verdict given"); len(recs) != 1 {
		t.Errorf("error records = %v", recs)
	}
}

// TestMeasureReusesAppraisalDigest: a file that is appraised and measured
// is read once: the measurement carries the digest the appraisal computed.
func TestMeasureReusesAppraisalDigest(t *testing.T) {
	h := start(t, "appraise func=BPRM_CHECK\nmeasure func=BPRM_CHECK\n", nil)
	f := h.file(t, "bin", "reuse me")
	if !h.src.decide(t, f, true) {
		t.Fatal("denied")
	}
	ms := h.meas.all()
	if len(ms) != 1 || !bytes.Equal(ms[0].Digest, bytes.Repeat([]byte{0xaa}, 32)) {
		t.Fatalf("measurement = %+v, want the appraisal's digest", ms)
	}
}

func TestOpenAppliesMmapRules(t *testing.T) {
	h := start(t, "appraise func=MMAP_CHECK mask=MAY_EXEC\n", nil)
	bad := h.file(t, "lib.so", "tampered")
	if h.src.decide(t, bad, false) {
		t.Error("MMAP_CHECK rule not applied at open")
	}
	if !h.src.decide(t, bad, true) {
		t.Error("MMAP_CHECK rule applied to exec")
	}
}

func TestStopAnswersPending(t *testing.T) {
	p, _ := policy.Parse("p", []byte(execPolicy))
	src := newFakeSource()
	app := &fakeInspector{sleep: 200 * time.Millisecond}
	eng, err := New(src, Config{Policy: p, Mode: Enforce, Inspector: app, Deadline: 5 * time.Second, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(context.Background()) }()
	dir := t.TempDir()
	var chans []chan bool
	for i := range 6 {
		f := filepath.Join(dir, "slow"+string(rune('a'+i)))
		os.WriteFile(f, []byte("slow"), 0o755)
		chans = append(chans, src.submit(t, f, true, 7))
	}
	// Stop answers what Run has read: wait until it has read all six
	// (was a 50 ms sleep, which a loaded machine can outlast).
	eventually(t, func() bool { return eng.Stats().Events == 6 }, "six events read")
	eng.Stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	for i, ch := range chans {
		select {
		case <-ch:
		default:
			t.Errorf("event %d not answered when Run returned", i)
		}
	}
}

func TestMetricsText(t *testing.T) {
	h := start(t, execPolicy, nil)
	h.src.decide(t, h.file(t, "good", "good"), true)
	var b bytes.Buffer
	// The decision is counted as it is answered: wait for the count.
	eventually(t, func() bool {
		b.Reset()
		h.eng.WriteMetrics(&b)
		return strings.Contains(b.String(), "intactd_decision_latency_seconds_count 1")
	}, "the decision counted")
	for _, want := range []string{"intactd_decisions_total 1", "intactd_decision_latency_seconds_count 1", "# TYPE intactd_queue_depth gauge"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	p, _ := policy.Parse("p", []byte("measure\nappraise\n"))
	for _, c := range []Config{
		{Mode: Enforce, Deadline: time.Second},
		{Policy: p, Mode: "strict", Deadline: time.Second, Inspector: &fakeInspector{}, Measurer: &fakeMeasurer{}},
		{Policy: p, Mode: Enforce, Deadline: time.Second, Measurer: &fakeMeasurer{}},
		{Policy: p, Mode: Enforce, Deadline: time.Second, Inspector: &fakeInspector{}},
		{Policy: p, Mode: Enforce, Inspector: &fakeInspector{}, Measurer: &fakeMeasurer{}},
	} {
		if _, err := New(newFakeSource(), c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	// A generous bound: what is awaited is that the condition comes
	// true, not how fast; a loaded 2-core CI machine can hold a worker
	// goroutine off the CPU for a second or more.
	if !testenv.Until(20*time.Second, cond) {
		t.Errorf("not reached: %s", what)
	}
}

func TestRunStopsOnContext(t *testing.T) {
	p, _ := policy.Parse("p", []byte(execPolicy))
	eng, err := New(newFakeSource(), Config{Policy: p, Mode: Enforce, Inspector: &fakeInspector{}, Deadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run ignored the cancelled context")
	}
}

// stallSource is a fakeSource whose reader reports a stall.
type stallSource struct {
	*fakeSource
	stall atomic.Int64
}

func (s *stallSource) ReadStall() time.Duration { return time.Duration(s.stall.Load()) }

// TestHealthSeesStalledReader: a reader blocked in the kernel (fanotify
// opening an event fd that waits for a lease) makes the engine unhealthy
// once it passes the deadline, so that intact status and the watchdog do
// not report a stalled daemon as healthy.
func TestHealthSeesStalledReader(t *testing.T) {
	p, _ := policy.Parse("p", []byte(execPolicy))
	src := &stallSource{fakeSource: newFakeSource()}
	eng, err := New(src, Config{Policy: p, Mode: Enforce, Inspector: &fakeInspector{}, Deadline: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !eng.Healthy() {
		t.Fatal("idle engine unhealthy")
	}
	src.stall.Store(int64(500 * time.Millisecond))
	if !eng.Healthy() {
		t.Error("a read within the deadline is not a stall")
	}
	src.stall.Store(int64(3 * time.Second))
	if eng.Healthy() {
		t.Error("reader blocked 3 s with a 1 s deadline: reported healthy")
	}
	if s := eng.Stats(); s.ReaderStallSecs < 3 {
		t.Errorf("Stats.ReaderStallSecs = %v", s.ReaderStallSecs)
	}
}

// TestLargeFileDoesNotDelaySmallOnes (issue 11 item 6): four accesses to
// a large file whose appraisal outlasts the deadline must not make the
// small files behind them miss theirs: the large file is decided off the
// decision workers. Every deadline record names the file and the
// accessing executable.
func TestLargeFileDoesNotDelaySmallOnes(t *testing.T) {
	h := start(t, "appraise func=FILE_CHECK\nappraise func=BPRM_CHECK appraise_type=imasig\n", func(c *Config) {
		c.Deadline, c.Workers, c.LargeFile, c.LargeWorkers = 400*time.Millisecond, 2, 1<<20, 1
		c.Self = 1 // this test process plays the accessing task
	})
	h.app.sleep = 3 * time.Second
	big := h.file(t, "big", "slow"+strings.Repeat("x", 2<<20))
	var bigs []chan bool
	for range 4 {
		bigs = append(bigs, h.src.submit(t, big, false, int32(os.Getpid())))
	}
	for _, name := range []string{"small1", "small2"} {
		small := h.file(t, name, "good binary")
		start := time.Now()
		select {
		case allow := <-h.src.submit(t, small, true, int32(os.Getpid())):
			if !allow {
				t.Errorf("%s denied after %s behind a large file", name, time.Since(start))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not answered", name)
		}
	}
	for i, ch := range bigs {
		select {
		case allow := <-ch:
			if allow {
				t.Errorf("large file %d allowed before its appraisal finished", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("large file %d not answered at its deadline", i)
		}
	}
	self, _ := os.Executable()
	// Each deadline record is logged just after its answer: wait for all
	// four before checking that there are no more.
	eventually(t, func() bool { return len(h.records(t, "decision deadline passed")) >= 4 }, "four deadline records")
	recs := h.records(t, "decision deadline passed")
	if len(recs) != 4 {
		t.Fatalf("%d deadline records, want 4", len(recs))
	}
	for _, r := range recs {
		if r["path"] != big || r["exe"] != self || r["hook"] != "open" {
			t.Errorf("deadline record = %v, want path %s and exe %s", r, big, self)
		}
	}
	if s := h.eng.Stats(); s.LargeFiles < 1 || s.Timeouts != 4 {
		t.Errorf("stats: %+v", s)
	}
}
