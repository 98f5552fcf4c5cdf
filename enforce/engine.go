// SPDX-License-Identifier: Apache-2.0

// Package enforce is intactd's decision engine. It reads permission events
// from an [EventSource] (fanotify in the daemon, a fake in tests), decides
// each from an IMA policy ([policy.Policy]): appraise the file through an
// [Inspector], measure it through a [Measurer] before allowing, audit it,
// or nothing; and answers the kernel.
//
// # Interfaces only
//
// The engine reads no label and hashes no file: its [Inspector] does, and
// is asked at once for everything a decision needs (the appraisal, the
// security.ima value for an ima-sig record, the sha256 digest for a
// measurement or an audit record, computed in the appraisal's read); the
// measurement and the audit use what it handed back, and it is asked
// again only for what that call could not give (the content of a file
// whose appraisal failed before reading it), so no file is read twice for
// one decision. The file system's UUID (fsuuid= rules) comes from
// [Config.FSUUID]. The result types
// ([Need], [Inspection], [Appraisal]) are defined here, beside the
// interfaces, and name algorithms and digests with package digest's
// types; the daemon's adapter from package appraise lives in cmd/intactd.
// internal/deps checks that this package links neither appraise, evm, sig
// nor internal/xattr, and uses only the types and constants of label and
// digest: no label parsing, no file hashing (TestLibraryDeps).
//
// # Never freeze the machine
//
//   - Events of the daemon's own process are allowed by the reader at once.
//   - The reader never touches a file: it decodes, arms a deadline and
//     hands the event to a worker.
//   - Every event has a deadline: when it passes, the event is answered
//     with the configured fail verdict, whatever the worker is doing.
//   - The kernel is answered before anything is logged.
//   - Stop answers every event read so far, then the source is closed (the
//     kernel allows events not yet read, as it does when the daemon dies).
//
// # Caching
//
// Appraisal results are cached under a fingerprint of the file (device,
// inode, size, mtime and ctime in ns, generation): a write, chmod, chown or
// setxattr changes ctime and so misses the cache. When the policy does not
// depend on the task's credentials, an allowed file also gets an in-kernel
// ignore mark (cleared by the kernel on the next write), so warm opens never
// leave the kernel; attribute changes, which do not clear it, are reported
// by a notification group and removed through [Engine.Invalidate]. Each
// file cached in the kernel holds a read lease, which the next open for
// write breaks (the ignore mark hides that open's event): the break drops
// the mark. A file open for write anywhere (writers.go) is never cached and,
// by default, fails its appraisal.
package enforce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/policy"
)

// Event is one permission event.
type Event struct {
	Fd int // fd of the file, opened by the kernel; the engine closes it
	// Pid is the accessing thread's id (FAN_REPORT_TID): credentials are
	// per thread, so they are read from that thread, not its leader.
	Pid  int32
	Exec bool // FAN_OPEN_EXEC_PERM (execve); else FAN_OPEN_PERM
}

// EventSource delivers permission events and takes the answers.
type EventSource interface {
	// Next blocks for the next events. It returns an error wrapping
	// ErrInterrupted after Interrupt, or another error when the source is
	// closed or broken.
	Next() ([]Event, error)
	// Interrupt makes a blocked (or the next) Next return ErrInterrupted.
	Interrupt()
	// Respond answers the event with fd.
	Respond(fd int, allow bool) error
	// Ignore caches an allow in the kernel for the inode open as fd, for
	// exec events or open events; the kernel drops it on modification.
	Ignore(fd int, exec bool) error
	// Unignore removes the cached allows of the inode open as fd (which
	// may be an O_PATH fd).
	Unignore(fd int) error
	// UnignoreAll removes every cached allow.
	UnignoreAll() error
}

// ErrInterrupted is returned by EventSource.Next after Interrupt.
var ErrInterrupted = errors.New("event source interrupted")

// Inspector tells the engine what it needs to know about one open file:
// its appraisal, its security.ima value and its content digests, from one
// read of the content. The daemon's Inspector (cmd/intactd) appraises
// through package appraise and hashes with package digest; the engine
// itself never reads a label nor hashes a file.
type Inspector interface {
	// Inspect reads what need asks for through f (the event's fd, the
	// file the kernel opened: no new open, no path race). It must read
	// the content at most once per call: digests wanted besides the
	// appraisal's are computed in the appraisal's read.
	Inspect(f *os.File, path string, need Need) Inspection
}

// Need is what one decision asks an Inspector for.
type Need struct {
	// Appraise: the file's verdict (label, signature and, when
	// configured, EVM).
	Appraise bool
	// Label: the file's security.ima value (for the ima-sig template).
	Label bool
	// Digests are the content digests wanted (measurement and audit:
	// sha256).
	Digests []digest.Algo
}

// Inspection is what an Inspector found.
type Inspection struct {
	// Appraisal is the verdict, when Need.Appraise.
	Appraisal Appraisal
	// Label is the security.ima value read (nil: none, or not asked
	// for): the one the appraisal judged, under Need.Appraise.
	Label []byte
	// Digests are the content digests computed in the one read of the
	// content: every algorithm of Need.Digests and, under Need.Appraise,
	// the label's. Empty when the content was not read: an appraisal that
	// failed before it (no label, an unknown key) does not read it, and
	// then does not digest it either.
	Digests []digest.Sum
	// Err is an operational failure reading the content for
	// Need.Digests outside an appraisal (an appraisal's failures are its
	// verdict).
	Err error
}

// Digest returns the inspection's digest with algo, nil if none.
func (in *Inspection) Digest(algo digest.Algo) []byte {
	for _, d := range in.Digests {
		if d.Algo == algo {
			return d.Bytes
		}
	}
	return nil
}

// Appraisal is a file's verdict.
type Appraisal struct {
	OK      bool
	Signed  bool   // a signature vouches for the content (appraise_type=imasig)
	Verdict string // "ok", "content-changed", ...
	Reason  string
}

// Measurer records a measurement (appends it to the measurement list and
// extends the PCR) before the access is allowed.
type Measurer interface {
	Measure(m Measurement) error
}

// Measurement is one file measurement.
type Measurement struct {
	PCR      int
	Template string // "ima-ng" or "ima-sig"
	Path     string
	Algo     digest.Algo
	Digest   []byte
	Sig      []byte // security.ima when it is a signature
	// Violation, if set, is a violation record's cause (open_writers):
	// the record has a zero digest and extends the PCR with ff..ff.
	Violation string
}

// Mode is enforce or log.
type Mode string

// The modes.
const (
	// Enforce denies failed accesses (EPERM).
	Enforce Mode = "enforce"
	// Log allows them and records what would have been denied, like
	// ima_appraise=log.
	Log Mode = "log"
)

// Config configures an Engine.
type Config struct {
	Policy *policy.Policy
	Mode   Mode
	// Inspector is required when the policy has appraise, measure or
	// audit rules.
	Inspector Inspector
	Measurer  Measurer // required when the policy has measure rules
	// DefaultPCR is the PCR of measure rules without pcr=.
	DefaultPCR int
	// Template is the template of measure rules without template=.
	Template string
	// Deadline bounds each decision, from the moment the event is read.
	Deadline time.Duration
	// FailAllow is the verdict when the deadline passes or a decision
	// fails for an operational reason: allow (true) or deny.
	FailAllow bool
	// Workers decide events in parallel (default 2×GOMAXPROCS, at least 4).
	Workers int
	// LargeFile is the size from which a file not yet in the cache is
	// decided off the decision workers (its hashing may take longer than
	// the deadline; default 4 MiB), by at most LargeWorkers at a time
	// (default GOMAXPROCS/2, at least 1).
	LargeFile    int64
	LargeWorkers int
	// KernelCache enables in-kernel ignore marks for verified files.
	KernelCache bool
	// CacheSize bounds the userspace verdict cache (entries).
	CacheSize int
	// Writers says what a file open for write (by another task) gets:
	// WritersFail (default) or WritersAppraise.
	Writers WritersMode
	// MaxLeases bounds the files cached in the kernel, each of which
	// holds a read lease and a descriptor (default: CacheSize, at most a
	// quarter of RLIMIT_NOFILE).
	MaxLeases int
	Logger    *slog.Logger
	// Self is the daemon's pid (default os.Getpid()); its events are
	// allowed at once.
	Self int32
	// Proc is the procfs root (default /proc).
	Proc string
	// FSUUID returns the UUID of the file system that holds f, as the
	// kernel's s_uuid (the daemon's: evm.FSUUID), for fsuuid= rules;
	// required when the policy has them.
	FSUUID func(f *os.File) ([]byte, error)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Policy == nil {
		return errors.New("no policy")
	}
	if c.Mode != Enforce && c.Mode != Log {
		return fmt.Errorf("mode %q: want enforce or log", c.Mode)
	}
	measure, appraise, audit := c.Policy.Needs()
	if (appraise || measure || audit) && c.Inspector == nil {
		return errors.New("the policy has appraise, measure or audit rules but no inspector is configured")
	}
	if measure && c.Measurer == nil {
		return errors.New("the policy has measure rules but no measurement list is configured")
	}
	if c.Deadline <= 0 {
		return errors.New("decision deadline must be positive")
	}
	if c.FSUUID == nil && slices.ContainsFunc(c.Policy.Rules, func(r policy.Rule) bool { return r.HasUUID }) {
		return errors.New("the policy has fsuuid= rules but no file-system UUID source is configured")
	}
	if c.Writers != "" && c.Writers != WritersFail && c.Writers != WritersAppraise {
		return fmt.Errorf("open writers %q: want fail or appraise", c.Writers)
	}
	return nil
}

// Engine decides permission events. Create it with New, run it with Run.
type Engine struct {
	cfg Config
	src EventSource
	// selfTask is "PROC/SELF/task/": the daemon's threads.
	selfTask string
	log      *slog.Logger
	cache    *cache
	// leases: one read lease per kernel-cached inode (writers.go).
	leases *leases
	fs     *fsInfo
	// subjectDependent: the policy tests task credentials, so decisions
	// cannot be cached for every task in the kernel.
	subjectDependent bool
	queue            chan *pending
	largeSem         chan struct{} // large-file decisions running
	inflight         sync.WaitGroup
	overflow         sync.WaitGroup
	oldest           sync.Map // *pending -> struct{}, for health checks
	stopping         atomic.Bool
	m                metrics
}

// New returns an engine on src.
func New(src EventSource, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if cfg.Self == 0 {
		cfg.Self = int32(os.Getpid())
	}
	if cfg.Proc == "" {
		cfg.Proc = "/proc"
	}
	if cfg.LargeFile <= 0 {
		cfg.LargeFile = 4 << 20
	}
	if cfg.LargeWorkers <= 0 {
		cfg.LargeWorkers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 1 << 16
	}
	if cfg.Template == "" {
		cfg.Template = "ima-ng"
	}
	if cfg.Writers == "" {
		cfg.Writers = WritersFail
	}
	if cfg.MaxLeases <= 0 {
		cfg.MaxLeases = cfg.CacheSize
		var rl unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur/4 < uint64(cfg.MaxLeases) {
			cfg.MaxLeases = int(rl.Cur / 4)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		cfg: cfg, src: src, log: cfg.Logger,
		cache:            newCache(cfg.CacheSize),
		leases:           newLeases(cfg.MaxLeases),
		fs:               newFSInfo(cfg.Proc, cfg.FSUUID),
		subjectDependent: cfg.Policy.SubjectDependent(),
		queue:            make(chan *pending, 4096),
		largeSem:         make(chan struct{}, cfg.LargeWorkers),
		selfTask:         cfg.Proc + "/" + strconv.Itoa(int(cfg.Self)) + "/task/",
	}
	return e, nil
}

// pending is an event read from the source and not yet closed.
type pending struct {
	ev       Event
	start    time.Time
	answered atomic.Bool
	timer    *time.Timer
	path     atomic.Pointer[string] // once a worker resolved it
	fdMu     sync.Mutex             // the fd is closed under fdMu
	closed   bool
}

// closeFile closes the event's fd (owned by f).
func (p *pending) closeFile(f *os.File) {
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	f.Close()
	p.closed = true
}

// pathOf names the event's file for a record written off the worker
// (the deadline): the worker's answer, else the fd's link while it is
// open.
func (p *pending) pathOf() string {
	if s := p.path.Load(); s != nil {
		return *s
	}
	p.fdMu.Lock()
	defer p.fdMu.Unlock()
	if p.closed {
		return "?"
	}
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(p.ev.Fd))
	if err != nil {
		return "?"
	}
	return path
}

// Run reads and decides events until the source is interrupted (Stop, or
// ctx done) or fails. Before returning it waits until every event read has been
// answered.
func (e *Engine) Run(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			e.Stop()
		case <-done:
		}
	}()
	var workers sync.WaitGroup
	for range e.cfg.Workers {
		workers.Go(func() {
			for p := range e.queue {
				e.handle(p)
			}
		})
	}
	// Lease breaks (an open for write of a kernel-cached file) arrive as
	// SIGIO; a tick re-checks in case a signal was coalesced away.
	sigio := make(chan os.Signal, 1)
	signal.Notify(sigio, unix.SIGIO)
	var breaks sync.WaitGroup
	stopBreaks := make(chan struct{})
	breaks.Go(func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sigio:
			case <-tick.C:
			case <-stopBreaks:
				return
			}
			e.leaseBreaks()
		}
	})
	err := e.read()
	e.overflow.Wait()
	close(e.queue)
	workers.Wait()
	e.inflight.Wait()
	signal.Stop(sigio)
	close(stopBreaks)
	breaks.Wait()
	e.leases.releaseAll()
	if errors.Is(err, ErrInterrupted) {
		return nil
	}
	return err
}

// leaseBreaks drops the kernel cache of every file whose lease is being
// broken, then lets its writer go on.
func (e *Engine) leaseBreaks() {
	n := e.leases.broken(func(fd int, k inode) {
		e.cache.invalidate(k.dev, k.ino)
		e.src.Unignore(fd)
	})
	e.m.leaseBreaks.Add(int64(n))
}

// read is the reader loop: no file access, no logging before answering.
func (e *Engine) read() error {
	for {
		evs, err := e.src.Next()
		for _, ev := range evs {
			e.dispatch(ev)
		}
		if err != nil {
			return err
		}
		if e.stopping.Load() {
			return ErrInterrupted
		}
	}
}

func (e *Engine) dispatch(ev Event) {
	e.m.events.Add(1)
	if e.isSelf(ev.Pid) || e.stopping.Load() {
		// Our own accesses, and events read while stopping, are allowed
		// at once.
		e.src.Respond(ev.Fd, true)
		closeFd(ev.Fd)
		e.m.self.Add(1)
		return
	}
	p := &pending{ev: ev, start: time.Now()}
	e.inflight.Add(1)
	e.oldest.Store(p, struct{}{})
	// Armed only once p.timer is set: expire may run at once.
	p.timer = time.AfterFunc(time.Hour, func() { e.expire(p) })
	p.timer.Reset(e.cfg.Deadline)
	select {
	case e.queue <- p:
	default:
		// Never block the reader (it must keep answering our own
		// accesses): a full queue is drained by a goroutine per event.
		// Each pending event is a task blocked in the kernel, so their
		// number is bounded by the number of tasks.
		e.overflow.Go(func() { e.queue <- p })
	}
}

// isSelf reports whether thread tid belongs to the daemon's process:
// the main thread, or one with an entry under /proc/SELF/task (a procfs
// lookup: the reader touches no watched file).
func (e *Engine) isSelf(tid int32) bool {
	if tid == e.cfg.Self {
		return true
	}
	var st unix.Stat_t
	return unix.Stat(e.selfTask+strconv.Itoa(int(tid)), &st) == nil
}

// expire gives the fail verdict to an event whose deadline passed.
//
// The record names the file and the accessing executable (read before
// the answer: after it, an exec replaces the task's executable), so that
// a slow file, or whoever keeps a decision busy, can be found.
func (e *Engine) expire(p *pending) {
	if p.answered.Load() {
		return
	}
	allow := e.cfg.FailAllow || e.cfg.Mode == Log
	exe, pid := exeOf(e.cfg.Proc, p.ev.Pid), tgidOf(e.cfg.Proc, p.ev.Pid)
	if e.answer(p, allow) {
		e.m.timeouts.Add(1)
		hook := "open"
		if p.ev.Exec {
			hook = "exec"
		}
		e.log.Warn("decision deadline passed", "path", p.pathOf(), "pid", pid, "tid", p.ev.Pid, "exe", exe,
			"hook", hook, "deadline", e.cfg.Deadline, "verdict", verdictName(allow))
	}
}

// answer responds once per event; it reports whether this call did.
func (e *Engine) answer(p *pending, allow bool) bool {
	if !p.answered.CompareAndSwap(false, true) {
		return false
	}
	p.timer.Stop()
	e.m.decisions.Add(1)
	if !allow {
		e.m.denials.Add(1)
	}
	if err := e.src.Respond(p.ev.Fd, allow); err != nil {
		e.m.respondErrors.Add(1)
	}
	e.m.latency.observe(time.Since(p.start))
	e.oldest.Delete(p)
	e.inflight.Done()
	return true
}

// Stop makes Run answer everything read so far and return. It does not
// close the source: close it after Run returns.
func (e *Engine) Stop() {
	e.stopping.Store(true)
	e.src.Interrupt()
}

// StallReporter is implemented by event sources that can tell how long
// their current read has been blocked in the kernel (0 when idle or not
// reading). fanotify opens each event's fd inside read(2): a read the
// kernel blocks holds up every event behind it.
type StallReporter interface {
	ReadStall() time.Duration
}

// readStall is the source's current read stall, or 0.
func (e *Engine) readStall() time.Duration {
	if sr, ok := e.src.(StallReporter); ok {
		return sr.ReadStall()
	}
	return 0
}

// Healthy reports whether no event has waited longer than twice the
// deadline and the reader has not been blocked in the kernel longer than
// the deadline (a stuck engine or reader: the watchdog should let the
// daemon die, and the kernel then allows everything pending).
func (e *Engine) Healthy() bool {
	if e.readStall() > e.cfg.Deadline {
		return false
	}
	ok := true
	limit := 2 * e.cfg.Deadline
	e.oldest.Range(func(k, _ any) bool {
		if time.Since(k.(*pending).start) > limit {
			ok = false
		}
		return ok
	})
	return ok
}

func verdictName(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}
