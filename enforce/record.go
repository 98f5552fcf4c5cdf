// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
)

// record logs what happened to an event, after the kernel was answered:
// one audit record per denial (or, in log mode, per access that would have
// been denied), audit-rule records, and operational failures.
func (e *Engine) record(p *pending, path string, o outcome, allow bool) {
	if o.measured {
		e.log.Debug("measured", "path", path, "pid", p.ev.Pid, "sha256", hex.EncodeToString(o.digest))
	}
	if !o.failed && !o.errored && !o.audited {
		return
	}
	if o.exe == "" {
		o.exe = exeOf(e.cfg.Proc, p.ev.Pid)
	}
	if o.pid == 0 {
		o.pid = tgidOf(e.cfg.Proc, p.ev.Pid)
	}
	hook := "open"
	if p.ev.Exec {
		hook = "exec"
	}
	attrs := []slog.Attr{
		slog.String("path", path),
		slog.Int("pid", int(o.pid)),
		slog.Int("tid", int(p.ev.Pid)),
		slog.String("exe", o.exe),
		slog.String("hook", hook),
	}
	if o.rule >= 0 && o.rule < len(e.cfg.Policy.Rules) {
		r := &e.cfg.Policy.Rules[o.rule]
		attrs = append(attrs, slog.String("rule", r.String()), slog.Int("rule_line", r.Line))
	}
	switch {
	case o.failed:
		attrs = append(attrs, slog.String("verdict", o.verdict), slog.String("reason", o.reason),
			slog.String("mode", string(e.cfg.Mode)), slog.String("decision", verdictName(allow)))
		msg := "denied"
		if allow {
			msg = "would deny"
			e.m.wouldDeny.Add(1)
		}
		e.log.LogAttrs(context.Background(), slog.LevelWarn, msg, append(attrs, slog.Bool("audit", true))...)
	case o.errored:
		e.m.errors.Add(1)
		attrs = append(attrs, slog.String("reason", o.reason), slog.String("decision", verdictName(allow)))
		e.log.LogAttrs(context.Background(), slog.LevelError, "decision failed, fail verdict given", attrs...)
	}
	if o.audited {
		e.log.LogAttrs(context.Background(), slog.LevelInfo, "audit", append(attrs, slog.String("sha256", hex.EncodeToString(o.digest)), slog.Bool("audit", true))...)
	}
}

func exeOf(proc string, pid int32) string {
	exe, err := os.Readlink(proc + "/" + strconv.Itoa(int(pid)) + "/exe")
	if err != nil {
		return "?"
	}
	return exe
}

// Invalidate forgets what is known about an inode and removes its cached
// allows from the kernel. fd is an fd (O_PATH is enough) on the inode.
func (e *Engine) Invalidate(fd int, dev, ino uint64) {
	e.cache.invalidate(dev, ino)
	if e.cfg.KernelCache {
		e.src.Unignore(fd)
		e.leases.release(inode{dev, ino})
	}
	e.m.invalidations.Add(1)
}

// InvalidateAll forgets everything cached (notification queue overflow,
// policy or key change).
func (e *Engine) InvalidateAll() {
	e.cache.invalidateAll()
	if e.cfg.KernelCache {
		e.src.UnignoreAll()
		e.leases.releaseAll()
	}
	e.m.invalidations.Add(1)
}
