// SPDX-License-Identifier: Apache-2.0

// Command intactd is intact's host daemon: it enforces file integrity on
// the mounts it watches by answering the kernel's fanotify permission
// events from an IMA policy. See docs/intactd.md.
package main

// The reference (docs/intactd-flags.md, docs/man/intactd.8,
// dist/completion) is generated from the flags:
//go:generate go test -count=1 -run ^TestReference$ . -args -update

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/fanotify"
	"github.com/intactsec/intact/internal/readfile"
	buildversion "github.com/intactsec/intact/internal/version"
	"github.com/intactsec/intact/policy"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/tpm"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errVersion) {
		fmt.Println(buildversion.Line("intactd"))
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "intactd: error: %v\n", err)
		return 2
	}
	if err := checkSimulator(cfg, tpmOpener()); err != nil {
		fmt.Fprintf(stderr, "intactd: error: %v\n", err)
		fmt.Fprintf(stderr, "intactd: hint: release builds use a TPM device (/dev/tpmrm0) or a swtpm (swtpm:HOST:PORT); for demonstrations: go build -tags %s ./cmd/intactd (scripts/quickstart.sh does)\n", tpm.SimBuildTag)
		return 2
	}
	log := newLogger(cfg, stderr)
	if err := serve(cfg, log); err != nil {
		log.Error("intactd stopped", "err", err)
		fmt.Fprintf(stderr, "intactd: error: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if level.UnmarshalText([]byte(cfg.LogLevel)) != nil {
		level = slog.LevelInfo
	}
	o := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		// journald adds its own timestamps.
		o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

// loadPolicy reads a policy file, or built-in policies by name.
func loadPolicy(spec string) (*policy.Policy, error) {
	if !strings.Contains(spec, "/") && policy.IsBuiltin(spec) {
		return policy.Builtin(spec)
	}
	b, err := readfile.Read(spec, readfile.Policy)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return policy.Parse(spec, b)
}

// needsOpenEvents reports whether some rule can act on a plain open; if
// none can, only exec events are marked.
func needsOpenEvents(p *policy.Policy) bool {
	for _, r := range p.Rules {
		switch r.Action {
		case policy.Measure, policy.Appraise, policy.Audit:
			if r.Func != policy.BprmCheck {
				return true
			}
		}
	}
	return false
}

// loadAppraiser builds the appraiser: IMA signatures against the certs,
// EVM signatures against the certs and the EVM certs. As in the kernel once
// EVM is initialized, an EVM key or EVM certificates make security.evm
// required (a file without one fails, missing-HMAC), unless EVMOptional.
func loadAppraiser(cfg Config) (*appraise.Appraiser, error) {
	var imaCerts, evmCerts []*x509.Certificate
	for _, c := range cfg.Certs {
		cs, err := sig.LoadCertificates(c)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c, err)
		}
		imaCerts = append(imaCerts, cs...)
	}
	for _, c := range cfg.EVMCerts {
		cs, err := sig.LoadCertificates(c)
		if err != nil {
			return nil, fmt.Errorf("evm certificate %s: %w", c, err)
		}
		evmCerts = append(evmCerts, cs...)
	}
	keys := sig.NewKeyring(imaCerts...)
	eo := &appraise.EVMOptions{Require: (cfg.EVMKey != "" || len(cfg.EVMCerts) > 0) && !cfg.EVMOptional}
	if len(evmCerts) > 0 {
		eo.Keys = sig.NewKeyring(append(imaCerts, evmCerts...)...)
	}
	if cfg.EVMKey != "" {
		key, err := loadEVMKey(cfg.EVMKey, cfg.EVMPassphraseFile)
		if err != nil {
			return nil, err
		}
		eo.HMACKey = key
	}
	return appraise.New(appraise.Options{Keys: keys, EVM: eo}), nil
}

func loadEVMKey(path, passFile string) ([]byte, error) {
	b, err := readfile.Read(path, readfile.Small)
	if err != nil {
		return nil, fmt.Errorf("evm key: %w", err)
	}
	kf, err := evm.ParseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("evm key %s: %w", path, err)
	}
	pass := []byte(os.Getenv("INTACTD_EVM_PASSPHRASE"))
	if passFile != "" {
		p, err := readfile.Read(passFile, readfile.Small)
		if err != nil {
			return nil, fmt.Errorf("evm key passphrase: %w", err)
		}
		pass = []byte(strings.TrimRight(string(p), "\r\n"))
	}
	key, err := kf.Open(pass)
	if err != nil {
		return nil, fmt.Errorf("evm key %s: %w", path, err)
	}
	return key, nil
}

// daemon is a running intactd.
type daemon struct {
	cfg     Config
	log     *slog.Logger
	pol     *policy.Policy
	group   *fanotify.Group
	src     *permSource
	eng     *enforce.Engine
	inv     *invalidator
	meas    *listMeasurer
	mounts  *mountWatch
	reserve *fdReserve
	servers []*http.Server
	started time.Time
}

func serve(cfg Config, log *slog.Logger) error {
	warnSimTPM(cfg, log)
	warnEVMOptional(cfg, log)
	d, err := setup(cfg, log)
	if err != nil {
		return err
	}
	return d.loop()
}

// checkSimulator refuses --tpm sim in a build without the simulator (a
// release build: tpms has no Simulator), before anything starts.
func checkSimulator(cfg Config, tpms tpm.Opener) error {
	if cfg.TPM == tpm.SimSpec && tpms.Simulator == nil {
		return fmt.Errorf("--tpm %s: this build has no TPM simulator (build with -tags %s)", tpm.SimSpec, tpm.SimBuildTag)
	}
	return nil
}

// warnSimTPM logs, at every start, that a daemon measuring into the
// embedded simulator proves nothing: the simulator lives in intactd's
// memory, so its PCRs and quotes are whatever the process says, and a
// restart resets them. It is for demonstrations (the quickstart's build,
// -tags intact_sim); release builds refuse --tpm sim (checkSimulator).
func warnSimTPM(cfg Config, log *slog.Logger) {
	if cfg.TPM != tpm.SimSpec {
		return
	}
	log.Warn("NOT FOR PRODUCTION: --tpm sim measures into an in-process TPM simulator; its PCRs, quotes and attestation prove nothing about this machine, and a restart resets them",
		"tpm", cfg.TPM, "mode", cfg.Mode)
}

// warnEVMOptional logs, at every start, that --evm-optional lets files
// without security.evm pass although EVM is configured.
func warnEVMOptional(cfg Config, log *slog.Logger) {
	if !cfg.EVMOptional {
		return
	}
	log.Warn("EVM OPTIONAL: files with security.ima and no security.evm are allowed although an EVM key or EVM certificates are configured; whoever strips security.evm skips the metadata check (owner, mode, setuid, protected xattrs). Use evm_optional only while migrating.",
		"evm_key", cfg.EVMKey != "", "evm_certs", len(cfg.EVMCerts))
}

// setup prepares everything that opens files before the first mark: the
// daemon must not depend on its own verdicts.
func setup(cfg Config, log *slog.Logger) (*daemon, error) {
	d := &daemon{cfg: cfg, log: log, started: time.Now()}
	var err error
	if d.pol, err = loadPolicy(cfg.Policy); err != nil {
		return nil, err
	}
	if err := enforce.CheckActs(d.pol); err != nil {
		if !cfg.AllowInertPolicy {
			return nil, fmt.Errorf("%w; refusing to start as if enforcing (--allow-inert-policy to start anyway)", err)
		}
		log.Warn("starting with a policy that enforces nothing (--allow-inert-policy)", "err", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	mounts := parseMountinfo(mi)
	watched := map[uint64]bool{}
	for _, w := range cfg.Watch {
		if err := checkMountPoint(w); err != nil {
			return nil, err
		}
		if err := checkWholeFS(mounts, w); err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Stat(w, &st); err != nil {
			return nil, fmt.Errorf("watch %s: %w", w, err)
		}
		watched[st.Dev] = true
	}
	for _, p := range d.pol.PCRs() {
		if p != cfg.PCR {
			return nil, fmt.Errorf("policy %s: pcr=%d, but intactd extends pcr %d (--pcr)", cfg.Policy, p, cfg.PCR)
		}
	}
	app, err := loadAppraiser(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	ecfg := enforce.Config{
		Policy: d.pol, Mode: enforce.Mode(cfg.Mode), Inspector: fileInspector{app}, FSUUID: evm.FSUUID,
		DefaultPCR: cfg.PCR, Deadline: cfg.Deadline.Duration, FailAllow: cfg.FailVerdict == "allow",
		KernelCache: !cfg.NoKernelCache, Logger: log, Writers: enforce.WritersMode(cfg.OpenWriters),
	}
	if measure, _, _ := d.pol.Needs(); measure {
		if d.meas, err = openMeasurer(cfg.StateDir, cfg.TPM, cfg.PCR); err != nil {
			return nil, err
		}
		ecfg.Measurer = d.meas
	}
	// The runtime loads the time zone lazily; do it now, not on a
	// watched mount later.
	_ = time.Now().Local().String()
	if d.mounts, err = newMountWatch(log, cfg.Watch, watched); err != nil {
		d.closeAll()
		return nil, err
	}
	// Group order matters when the daemon dies without closing them (SIGKILL):
	// see permAfterNotify.
	if d.inv, err = newInvalidator(log, cfg.Watch); err != nil {
		d.closeAll()
		return nil, err
	}
	if d.group, err = fanotify.NewPermGroup(); err != nil {
		d.closeAll()
		return nil, err
	}
	if err := permAfterNotify(d.group, d.inv.fd()); err != nil {
		d.closeAll()
		return nil, err
	}
	// Spare descriptors, released when the daemon runs out (an fd
	// exhaustion must never stop enforcement).
	if d.reserve, err = newFDReserve(fdReserveSize()); err != nil {
		d.closeAll()
		return nil, err
	}
	d.src = newPermSource(d.group, d.reserve)
	if d.eng, err = enforce.New(d.src, ecfg); err != nil {
		d.closeAll()
		return nil, err
	}
	d.inv.setEngine(d.eng)
	if err := d.startServers(); err != nil {
		d.closeAll()
		return nil, err
	}
	return d, nil
}

func (d *daemon) startServers() error {
	srv, err := serveControl(d.cfg.Socket, d.status, d.log)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	d.servers = append(d.servers, srv)
	if d.cfg.MetricsListen != "" {
		srv, addr, err := serveMetrics(d.cfg.MetricsListen, d.eng, d.log)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		d.log.Info("serving metrics", "addr", "http://"+addr+"/metrics")
		d.servers = append(d.servers, srv)
	}
	if d.cfg.AgentListen != "" {
		srv, addr, err := serveAgent(d.cfg, d.meas, d.log)
		if err != nil {
			return fmt.Errorf("attestation agent: %w", err)
		}
		d.log.Info("serving attestation agent", "addr", addr)
		d.servers = append(d.servers, srv)
	}
	return nil
}

func (d *daemon) status() enforce.Status {
	return enforce.Status{
		Version: version(), Pid: os.Getpid(), Started: d.started, Watch: d.cfg.Watch,
		Policy: d.cfg.Policy, Rules: len(d.pol.Rules), Healthy: d.eng.Healthy(),
		Overflow: d.src.overflows.Load(), Stats: d.eng.Stats(), Uncovered: d.mounts.Uncovered(),
		EventFDErrors: d.src.fdErrors.Load(),
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "(devel)"
}

// mark puts the permission marks on the watched file systems: from here
// on, the engine must run. A filesystem mark (not a mount mark) covers
// every mount of the file system in every mount namespace: the daemon's
// own (systemd gives it a private one), other users' (unshare -Urm),
// bind mounts made later and containers. See mounts.go for what it does
// not cover.
func (d *daemon) mark() error {
	mask := fanotify.PermEvents
	if !needsOpenEvents(d.pol) {
		mask = fanotify.OpenExecPerm
	}
	for _, w := range d.cfg.Watch {
		if err := d.group.MarkFilesystem(w, mask); err != nil {
			return err
		}
	}
	return nil
}

func (d *daemon) loop() error {
	defer d.closeAll()
	runErr := make(chan error, 1)
	go func() { runErr <- d.eng.Run(context.Background()) }()
	go d.inv.run()
	if err := d.mark(); err != nil {
		d.eng.Stop()
		<-runErr
		return err
	}
	d.log.Info("intactd enforcing", "watch", d.cfg.Watch, "policy", d.cfg.Policy, "rules", len(d.pol.Rules),
		"mode", d.cfg.Mode, "socket", d.cfg.Socket, "kernel_cache", !d.cfg.NoKernelCache)
	sdNotify("READY=1\nSTATUS=enforcing on " + strings.Join(d.cfg.Watch, " "))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	interval := watchdogInterval()
	check := interval
	if check == 0 {
		check = d.cfg.Deadline.Duration
	}
	tick := time.NewTicker(check)
	defer tick.Stop()
	stalls := 0
	var fds fdReport
	fdTick := time.NewTicker(time.Second)
	defer fdTick.Stop()
	for {
		select {
		case err := <-runErr:
			return fmt.Errorf("engine stopped: %w", err)
		case s := <-sigs:
			return d.shutdown(s, runErr)
		case <-fdTick.C:
			fds.report(d)
		case <-tick.C:
			if d.eng.Healthy() {
				stalls = 0
				if interval > 0 {
					sdNotify("WATCHDOG=1")
				}
				continue
			}
			if stalls++; stalls >= 2 {
				// A stuck decision path: close the group so that the kernel
				// allows everything pending, and exit for a restart.
				d.log.Error("decisions stalled; closing the fanotify group (the kernel allows pending events) and exiting for a restart",
					"reader_stall", d.src.ReadStall().String())
				d.group.Close()
				select { // stuck workers may never return: do not wait for them
				case <-runErr:
				case <-time.After(time.Second):
				}
				return errors.New("decision workers stalled")
			}
		}
	}
}

// fdReserveSize is the number of spare descriptors intactd keeps for
// when it runs out: an eighth of its limit, 4 to 32.
func fdReserveSize() int {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return 32
	}
	return int(min(max(rl.Cur/8, 4), 32))
}

// fdReport logs, from the health loop (never from the reader), the
// events the kernel denied because it could not open their fd for
// intactd, and takes the spare descriptors again once they are free.
type fdReport struct{ lease, exhausted, released int64 }

func (r *fdReport) report(d *daemon) {
	lease, exh, rel := d.src.fdLease.Load(), d.src.fdExhausted.Load(), d.reserve.released.Load()
	if lease > r.lease {
		d.log.Warn("the kernel denied accesses to leased files: opening them for intactd would have waited for the lease holder",
			"denied", lease-r.lease, "total", lease)
	}
	if exh > r.exhausted || rel > r.released {
		d.log.Error("out of file descriptors: the kernel denied accesses intactd could not open; spare descriptors released",
			"denied", exh-r.exhausted, "total", exh, "reserve_released", rel)
	}
	if exh == r.exhausted && d.reserve.size() < d.reserve.want && d.reserve.refill() {
		d.log.Info("spare descriptors reserved again", "n", d.reserve.want)
	}
	r.lease, r.exhausted, r.released = lease, exh, rel
}

// shutdown answers every event read, then closes the group: events not
// yet read are allowed by the kernel when the group closes.
func (d *daemon) shutdown(s os.Signal, runErr chan error) error {
	d.log.Info("stopping", "signal", s.String())
	sdNotify("STOPPING=1")
	d.eng.Stop()
	select {
	case err := <-runErr:
		if err != nil {
			return err
		}
	case <-time.After(d.cfg.Deadline.Duration + 5*time.Second):
		d.log.Error("engine did not stop in time; closing the group")
	}
	return nil
}

func (d *daemon) closeAll() {
	if d.group != nil {
		d.group.Close()
	}
	if d.inv != nil {
		d.inv.close()
	}
	if d.mounts != nil {
		d.mounts.close()
	}
	if d.reserve != nil {
		d.reserve.release()
	}
	for _, s := range d.servers {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.Shutdown(ctx)
		cancel()
	}
	if d.cfg.Socket != "" {
		os.Remove(d.cfg.Socket)
	}
	if d.meas != nil {
		d.meas.Close()
	}
}

// permAfterNotify makes sure that the permission group's descriptor number is
// above the notification group's.
//
// While a task waits for a permission answer, the kernel pins every mark
// the access matched, including the notification group's, and that
// group's release (fsnotify_destroy_group) waits until the task is done.
// When the daemon dies without closing its groups, the exiting task
// releases its files one after the other, the highest descriptor first
// (task_work runs last-in first-out). If the notification group were
// released first, it would wait for tasks that only the permission
// group's release can wake: the daemon would hang in exit and the
// accessors with it (seen on 6.18 under load). With the permission group
// above, it is released first, allows everything pending, and the
// notification group follows. The e2e load test kills the daemon with
// SIGKILL mid-load to hold this.
func permAfterNotify(perm *fanotify.Group, notifyFD int) error {
	if perm.Fd() > notifyFD {
		return nil
	}
	return fmt.Errorf("fanotify permission group fd %d is not above the notification group fd %d", perm.Fd(), notifyFD)
}

// checkMountPoint refuses a watch path that is not the root of a mount:
// the filesystem mark would cover the whole file system that contains it
// (for /usr/local on the root file system: all of /).
func checkMountPoint(path string) error {
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, 0, &sx); err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	if sx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return nil // the kernel does not say (before 5.8): trust the administrator
	}
	if sx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		return fmt.Errorf("watch %s: not a mount point (intactd would mark the whole mount that holds it)", path)
	}
	return nil
}
