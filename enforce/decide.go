// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/policy"
)

// outcome is the decision for one event, kept for logging after the
// answer.
type outcome struct {
	allow     bool
	failed    bool   // the policy's checks failed (would deny in log mode)
	errored   bool   // an operational failure: the fail verdict applies
	reason    string // why it failed
	verdict   string // appraisal verdict
	rule      int    // index of the deciding rule, -1 if none
	cacheable bool   // may be cached in the kernel
	cacheHit  bool
	measured  bool
	audited   bool
	digest    []byte
	exe       string
	pid       int32 // the accessing thread's process, for records
}

// handle decides one event on a worker, answers it, and closes its fd.
// A file whose appraisal means hashing a large file is handed to the
// large-file path (a goroutine, at most LargeWorkers hashing at once), so
// that the workers stay free for the small files behind it.
func (e *Engine) handle(p *pending) {
	// f owns the event fd: closing it (after the answer) closes the fd.
	f := os.NewFile(uintptr(p.ev.Fd), "")
	if p.answered.Load() {
		p.closeFile(f)
		return // deadline passed while queued
	}
	path, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(p.ev.Fd))
	p.path.Store(&path)
	fp, st, err := fingerprintOf(p.ev.Fd)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && fp.Size >= e.cfg.LargeFile && !e.cache.has(fp) {
		e.m.large.Add(1)
		go func() {
			e.largeSem <- struct{}{}
			defer func() { <-e.largeSem }()
			e.finish(p, f, path, fp, st, err)
		}()
		return
	}
	e.finish(p, f, path, fp, st, err)
}

// finish decides the event, answers it and closes f.
func (e *Engine) finish(p *pending, f *os.File, path string, fp fingerprint, st *unix.Stat_t, err error) {
	defer p.closeFile(f)
	var o outcome
	switch {
	case err != nil:
		o = outcome{errored: true, reason: "fstat: " + err.Error(), rule: -1}
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		o = outcome{allow: true, rule: -1}
	default:
		o = e.decide(p, f, path, fp, st)
	}
	allow := o.allow
	if o.errored {
		allow = e.cfg.FailAllow
	}
	if e.cfg.Mode == Log {
		allow = true
	}
	if o.failed || o.errored {
		// For the audit record: the executable before the task moves on
		// (a procfs readlink, no watched file is touched).
		o.exe = exeOf(e.cfg.Proc, p.ev.Pid)
		o.pid = tgidOf(e.cfg.Proc, p.ev.Pid)
	}
	if !e.answer(p, allow) {
		return // the deadline answered first
	}
	if o.cacheHit {
		e.m.cacheHits.Add(1)
	}
	if allow && o.cacheable && !o.failed && !o.errored && e.cfg.KernelCache {
		e.kernelCache(p.ev, fp)
	}
	e.record(p, path, o, allow)
}

// kernelCache puts an ignore mark on the inode, then checks that the file
// did not change between the fstat and the mark; if it did, the mark is
// removed again.
//
// The mark is kept only with a read lease on the inode: the next open for
// write breaks it (whose own open event the mark hides), and the lease
// break drops the mark (see leases). No lease (writers, no fds), no mark.
func (e *Engine) kernelCache(ev Event, fp fingerprint) {
	k := inode{fp.Dev, fp.Ino}
	if err := e.leases.hold(ev.Fd, k); err != nil {
		e.m.leaseRefused.Add(1)
		return
	}
	if err := e.src.Ignore(ev.Fd, ev.Exec); err != nil {
		e.m.ignoreErrors.Add(1)
		return
	}
	if now, _, err := fingerprintOf(ev.Fd); err != nil || now != fp {
		e.src.Unignore(ev.Fd)
		e.leases.release(k)
		e.cache.invalidate(fp.Dev, fp.Ino)
		return
	}
	e.m.ignoreMarks.Add(1)
}

// subjectFor fills the policy subject of the event.
func (e *Engine) subjectFor(p *pending, f *os.File, st *unix.Stat_t) policy.Subject {
	s := policy.Subject{FOwner: st.Uid, FGroup: st.Gid}
	fi := e.fs.get(f, st.Dev)
	s.FSMagic, s.FSName, s.FSUUID = fi.magic, fi.name, fi.uuid
	if e.subjectDependent {
		readCreds(e.cfg.Proc, p.ev.Pid, &s)
	}
	return s
}

// policyDecision evaluates the policy: BPRM_CHECK for an exec; for other
// opens FILE_CHECK (mask MAY_READ: fanotify does not tell the open mode)
// and MMAP_CHECK with MAY_EXEC, since any opened file may be mapped
// executable and fanotify sees no mmap.
func (e *Engine) policyDecision(s policy.Subject, exec bool) policy.Decision {
	if exec {
		s.Func, s.Mask = policy.BprmCheck, policy.MayExec
		return e.cfg.Policy.Decide(s)
	}
	s.Func, s.Mask = policy.FileCheck, policy.MayRead
	d := e.cfg.Policy.Decide(s)
	s.Func, s.Mask = policy.MmapCheck, policy.MayExec
	return merge(d, e.cfg.Policy.Decide(s))
}

// merge combines two decisions: each "do" wins.
func merge(a, b policy.Decision) policy.Decision {
	if !a.Appraise && b.Appraise {
		a.Appraise, a.SigRequired, a.AppraiseRule = true, b.SigRequired, b.AppraiseRule
	} else if a.Appraise && b.Appraise && b.SigRequired {
		a.SigRequired = true
	}
	if !a.Measure && b.Measure {
		a.Measure, a.PCR, a.HasPCR, a.Template, a.MeasureRule = true, b.PCR, b.HasPCR, b.Template, b.MeasureRule
	}
	if !a.Audit && b.Audit {
		a.Audit, a.AuditRule = true, b.AuditRule
	}
	return a
}

func (e *Engine) decide(p *pending, f *os.File, path string, fp fingerprint, st *unix.Stat_t) outcome {
	d := e.policyDecision(e.subjectFor(p, f, st), p.ev.Exec)
	o := outcome{allow: true, rule: -1, cacheable: !e.subjectDependent}
	// One decision per inode at a time: no double hashing or measuring.
	unlock := e.cache.lock(fp)
	defer unlock()
	w := e.writersOf(p, fp, d.Appraise || d.Measure || d.Audit)
	var ent entry
	hit := false
	if !w.any {
		ent, hit = e.cache.get(fp)
	}
	o.cacheHit = hit
	if w.any {
		o.cacheable = false
	}
	pcr := e.cfg.DefaultPCR
	if d.HasPCR {
		pcr = d.PCR
	}
	template := d.Template
	if template == "" {
		template = e.cfg.Template
	}
	// What this decision reads of the file, read once (see reading).
	r := &reading{ins: e.cfg.Inspector, f: f, path: path, sum: ent.sum}
	measure := d.Measure && ent.measured&(1<<pcr) == 0
	if d.Appraise {
		o.rule = d.AppraiseRule
		switch {
		case w.reader() && e.cfg.Writers != WritersAppraise:
			ent.appraisal = &Appraisal{Verdict: VerdictOpenWriters, Reason: w.reason()}
		case ent.appraisal == nil:
			// What measuring and auditing will need is read along: the
			// sha256 digest in the appraisal's read of the content.
			a := r.appraise(measure || d.Audit && !ent.audited, measure && template == "ima-sig")
			ent.appraisal = &a
		}
		a := ent.appraisal
		o.verdict = a.Verdict
		switch {
		case !a.OK:
			o.allow, o.failed, o.reason = false, true, a.Verdict
			if a.Reason != "" {
				o.reason += ": " + a.Reason
			}
		case d.SigRequired && !a.Signed:
			o.allow, o.failed, o.reason = false, true, "appraise_type=imasig: the label is not a signature"
		}
	}
	if o.allow && d.Measure {
		if w.reader() {
			// As the kernel's IMA: a violation record (zero digest, the
			// PCR extended with ff...), then the measurement of what was read.
			if err := e.violation(path, pcr, template, "open_writers"); err != nil {
				o.errored, o.reason, o.rule = true, "measure: "+err.Error(), d.MeasureRule
			}
		}
		if !o.errored && measure {
			if err := e.measure(&o, r, path, pcr, template); err != nil {
				o.errored, o.reason, o.rule = true, "measure: "+err.Error(), d.MeasureRule
			} else {
				ent.measured |= 1 << pcr
				o.measured = true
			}
		}
	}
	if d.Audit && !ent.audited && !o.errored {
		ent.audited, o.audited = true, true
		if o.digest == nil {
			o.digest, _ = r.sha256(false)
		}
	}
	ent.sum = r.sum
	if w.any {
		return o // never cached
	}
	if !hit && (d.Appraise || d.Measure) {
		// A writer that came while the file was read: what was read may
		// not be what the next reader gets.
		if now := e.writersOf(p, fp, true); now.any {
			o.cacheable = false
			if o.measured && now.err == nil {
				// Opened for write after it was measured: the kernel's
				// ToMToU (time of measure, time of use).
				if err := e.violation(path, pcr, template, "ToMToU"); err != nil {
					o.errored, o.reason, o.rule = true, "measure: "+err.Error(), d.MeasureRule
				}
			}
			if d.Appraise && e.cfg.Writers != WritersAppraise && o.allow {
				o.allow, o.failed, o.verdict = false, true, VerdictOpenWriters
				o.reason = VerdictOpenWriters + ": " + now.reason()
			}
			return o
		}
	}
	// Failed appraisals are cached too: same fingerprint, same verdict.
	e.cache.put(fp, ent)
	return o
}

// measureAlgo is the digest of measurement and audit records.
const measureAlgo = digest.SHA256

// reading is what one decision has read of its file through the
// Inspector, so that nothing is read twice: the appraisal asks for what
// measuring and auditing will need, and a later step asks only for what
// is still missing (the content of a file whose appraisal failed before
// reading it, the label when no appraisal ran).
type reading struct {
	ins       Inspector
	f         *os.File
	path      string
	sum       []byte // the content's measureAlgo digest
	label     []byte // security.ima, once labelRead
	labelRead bool
	err       error // the content could not be read
}

// take keeps what an inspection found.
func (r *reading) take(in *Inspection, withLabel bool) {
	if s := in.Digest(measureAlgo); s != nil {
		r.sum = s
	}
	if withLabel {
		r.label, r.labelRead = in.Label, true
	}
	if in.Err != nil {
		r.err = in.Err
	}
}

// appraise appraises the file, digesting it for measureAlgo in the same
// read when sum is set and reading its label when withLabel is.
func (r *reading) appraise(sum, withLabel bool) Appraisal {
	need := Need{Appraise: true, Label: withLabel}
	if sum && r.sum == nil {
		need.Digests = []digest.Algo{measureAlgo}
	}
	in := r.ins.Inspect(r.f, r.path, need)
	// An appraisal reads the label anyway: it is the one judged.
	r.take(&in, true)
	return in.Appraisal
}

// sha256 returns the content's measureAlgo digest, reading the file
// (and, withLabel, its label in the same call) only if no inspection of
// this decision has digested it yet.
func (r *reading) sha256(withLabel bool) ([]byte, error) {
	withLabel = withLabel && !r.labelRead
	if (r.sum == nil && r.err == nil) || withLabel {
		need := Need{Label: withLabel}
		if r.sum == nil && r.err == nil {
			need.Digests = []digest.Algo{measureAlgo}
		}
		in := r.ins.Inspect(r.f, r.path, need)
		r.take(&in, withLabel)
	}
	if r.sum == nil && r.err == nil {
		r.err = errors.New("the inspector returned no " + measureAlgo.String() + " digest")
	}
	return r.sum, r.err
}

// writerState is what is known about a file's writers at a decision.
type writerState struct {
	any  bool  // open for write somewhere (or cannot tell)
	self bool  // the open being decided is itself for write
	err  error // why it cannot tell
}

// reader: the file has writers and the access is not one of them.
func (w writerState) reader() bool { return w.any && !w.self }

func (w writerState) reason() string {
	if w.err != nil {
		return "cannot tell whether the file is open for write (" + w.err.Error() + "): its content could change after the check"
	}
	return "the file is open for write (a write descriptor or a shared writable mapping): its content can change after the check"
}

// writersOf checks the event's file for writers when the decision acts on
// it. A file with writers drops everything cached about it: its content
// can change with no event (shared mappings).
func (e *Engine) writersOf(p *pending, fp fingerprint, acts bool) writerState {
	if !acts {
		return writerState{}
	}
	var w writerState
	w.any, w.err = hasWriters(p.ev.Fd)
	if !w.any {
		return w
	}
	if !p.ev.Exec && w.err == nil {
		// An open for write counts itself: tell it from a reader.
		w.self, _ = writeOpen(e.cfg.Proc, p.ev.Pid)
	}
	e.m.writers.Add(1)
	e.dropCached(p.ev.Fd, fp)
	return w
}

// dropCached forgets an inode in userspace and in the kernel.
func (e *Engine) dropCached(fd int, fp fingerprint) {
	e.cache.invalidate(fp.Dev, fp.Ino)
	if e.cfg.KernelCache {
		e.leases.release(inode{fp.Dev, fp.Ino})
		e.src.Unignore(fd)
	}
}

// violation records a measurement violation (cause as the kernel's:
// open_writers, ToMToU) for path in the measurement list.
func (e *Engine) violation(path string, pcr int, template, cause string) error {
	err := e.cfg.Measurer.Measure(Measurement{PCR: pcr, Template: template, Path: path, Algo: measureAlgo,
		Digest: make([]byte, measureAlgo.Size()), Violation: cause})
	if err == nil {
		e.m.violations.Add(1)
	}
	return err
}

// measure records the file, with the digest (and, for ima-sig, the
// label) the decision has read or reads now.
func (e *Engine) measure(o *outcome, r *reading, path string, pcr int, template string) error {
	dig, err := r.sha256(template == "ima-sig")
	if err != nil {
		return err
	}
	o.digest = dig
	m := Measurement{PCR: pcr, Template: template, Path: path, Algo: measureAlgo, Digest: dig}
	if raw := r.label; template == "ima-sig" && len(raw) > 0 &&
		(label.Type(raw[0]) == label.TypeDigsig || label.Type(raw[0]) == label.TypeVerityDigsig) {
		m.Sig = raw
	}
	start := time.Now()
	err = e.cfg.Measurer.Measure(m)
	e.m.measureLatency.observe(time.Since(start))
	if err == nil {
		e.m.measurements.Add(1)
	}
	return err
}

func closeFd(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
