// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/mlog"
)

// Config is intactd's configuration: a JSON file (--config) overridden by
// flags. See docs/intactd.md.
type Config struct {
	// Watch lists the file systems to enforce on, each by a mount of its
	// root (FAN_MARK_FILESYSTEM: every mount of it, in every namespace).
	Watch []string `json:"watch"`
	// Policy is an IMA policy file, or built-in names ("tcb",
	// "appraise_tcb", "tcb|appraise_tcb").
	Policy string `json:"policy"`
	// Certs are trusted certificates (DER or PEM) for signatures.
	Certs []string `json:"certs"`
	// EVMKey is an EVM key file (intact evmkey) for security.evm HMACs;
	// its passphrase comes from EVMPassphraseFile or the environment
	// variable INTACTD_EVM_PASSPHRASE.
	EVMKey            string `json:"evm_key"`
	EVMPassphraseFile string `json:"evm_passphrase_file"`
	// EVMCerts are certificates trusted for security.evm signatures only
	// (the kernel's .evm keyring).
	EVMCerts []string `json:"evm_certs"`
	// EVMOptional lets files without security.evm pass although EVMKey or
	// EVMCerts is set (for migrations; logged as a warning at every start).
	// Without it, as in the kernel once EVM is initialized, such a file
	// fails (missing-HMAC).
	EVMOptional bool `json:"evm_optional"`
	// Mode is "enforce" (deny with EPERM) or "log" (allow and record).
	Mode string `json:"mode"`
	// TPM is the TPM for measurements: a device path, swtpm:HOST:PORT or
	// sim (see tpm.Open; sim only in builds with -tags intact_sim); "" is
	// the default device.
	TPM string `json:"tpm"`
	// PCR is the PCR measurements extend (default mlog.DefaultPCR, 13); rules may not name
	// another with pcr=.
	PCR int `json:"pcr"`
	// StateDir holds the measurement list and the control socket.
	StateDir string `json:"state_dir"`
	// Socket is the control socket (default STATE_DIR/intactd.sock).
	Socket string `json:"socket"`
	// MetricsListen is a TCP address for Prometheus metrics ("" = off).
	MetricsListen string `json:"metrics_listen"`
	// AgentListen is a TCP address for the attestation agent's HTTPS API
	// ("" = off; docs/attestation.md). It needs a policy that measures.
	AgentListen string `json:"agent_listen"`
	// Deadline bounds one decision (default 2s).
	Deadline Duration `json:"deadline"`
	// FailVerdict is given when the deadline passes or a decision fails
	// for an operational reason: "deny" (default) or "allow".
	FailVerdict string `json:"fail_verdict"`
	// LogFormat is "json" (default) or "text" (journald-friendly).
	LogFormat string `json:"log_format"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `json:"log_level"`
	// NoKernelCache turns off the in-kernel ignore marks.
	NoKernelCache bool `json:"no_kernel_cache"`
	// OpenWriters is what a file open for write elsewhere (a write fd or
	// a shared writable mapping) gets under an appraise rule: "fail"
	// (default; verdict open-writers) or "appraise" (at every access,
	// never cached).
	OpenWriters string `json:"open_writers"`
	// AllowInertPolicy starts with a policy none of whose rules can act
	// (enforce.CheckActs), which is refused by default.
	AllowInertPolicy bool `json:"allow_inert_policy"`
}

// Duration is a time.Duration written as "2s" in JSON.
type Duration struct{ time.Duration }

// UnmarshalJSON reads "250ms", "2s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration: want a string such as \"2s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func defaults() Config {
	return Config{Mode: "enforce", StateDir: "/var/lib/intactd", PCR: mlog.DefaultPCR,
		Deadline: Duration{2 * time.Second}, FailVerdict: "deny", OpenWriters: "fail", LogFormat: "json", LogLevel: "info"}
}

// loadConfig reads a JSON config file over the defaults.
func loadConfig(path string, c *Config) error {
	b, err := readfile.Read(path, readfile.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		return fmt.Errorf("config %s: trailing data after the JSON object", path)
	}
	return nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Watch) == 0 {
		errs = append(errs, errors.New("no mount to watch (--watch PATH)"))
	}
	for _, w := range c.Watch {
		if !filepath.IsAbs(w) {
			errs = append(errs, fmt.Errorf("watch %q: not an absolute path", w))
		}
	}
	if c.Policy == "" {
		errs = append(errs, errors.New("no policy (--policy FILE or a built-in name)"))
	}
	if c.Mode != "enforce" && c.Mode != "log" {
		errs = append(errs, fmt.Errorf("mode %q: want enforce or log", c.Mode))
	}
	if c.FailVerdict != "deny" && c.FailVerdict != "allow" {
		errs = append(errs, fmt.Errorf("fail_verdict %q: want deny or allow", c.FailVerdict))
	}
	if c.OpenWriters != "fail" && c.OpenWriters != "appraise" {
		errs = append(errs, fmt.Errorf("open_writers %q: want fail or appraise", c.OpenWriters))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format %q: want json or text", c.LogFormat))
	}
	if c.Deadline.Duration <= 0 {
		errs = append(errs, errors.New("deadline must be positive"))
	}
	if c.PCR < 1 || c.PCR > 23 {
		errs = append(errs, fmt.Errorf("pcr %d: want 1-23", c.PCR))
	}
	if !filepath.IsAbs(c.StateDir) {
		errs = append(errs, fmt.Errorf("state_dir %q: not an absolute path", c.StateDir))
	}
	if c.EVMOptional && c.EVMKey == "" && len(c.EVMCerts) == 0 {
		errs = append(errs, errors.New("evm_optional needs evm_key or evm_certs (without them security.evm is optional already)"))
	}
	// State, config, keys and logs must not live on a watched mount: the
	// daemon's own opens there would need its own verdicts.
	for _, w := range c.Watch {
		for _, p := range append(append([]string{c.StateDir, c.Socket, c.EVMKey}, c.Certs...), c.EVMCerts...) {
			if p != "" && w != "/" && within(p, w) {
				errs = append(errs, fmt.Errorf("%s is on the watched path %s: keep intactd's own files off watched mounts", p, w))
			}
		}
	}
	return errors.Join(errs...)
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const usage = `intactd enforces file integrity on the mounts it watches: it answers
the kernel's fanotify permission events (exec and open) from an IMA
policy: appraise (labels, signatures, EVM), measure (measurement list +
TPM PCR), audit, or nothing.

Usage:
    intactd [--config FILE] [--watch PATH]... [--policy FILE|tcb|appraise_tcb]
            [--cert FILE]... [--evmkey FILE] [--mode enforce|log] [--tpm SPEC]
            [--state-dir DIR]

Flags override the config file. See docs/intactd.md.

Examples:
    intactd --watch /usr --policy /etc/intact/policy --cert /etc/intact/signing.der
    intactd --config /etc/intact/intactd.json --mode log
`

// parseFlags parses args over the config file they name.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	return parseFlagsWith(args, stderr, nil)
}

// errVersion ends a parse that found --version.
var errVersion = errors.New("version asked for")

// errDescribed ends a parse whose flag set went to describe.
var errDescribed = errors.New("flags described")

// parseFlagsWith is parseFlags; describe, when not nil, receives the flag
// set instead (the reference generator, docs_test.go).
func parseFlagsWith(args []string, stderr io.Writer, describe func(*flag.FlagSet)) (Config, error) {
	fs := flag.NewFlagSet("intactd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage, "\nFlags:\n"); fs.PrintDefaults() }
	var (
		configPath                       string
		watch, certs, evmCerts           stringList
		pol, evmKey, evmPass, mode, tpmS string
		stateDir, socket, metrics, failV string
		agentListen                      string
		logFormat, logLevel              string
		deadline                         time.Duration
		pcr                              int
		noKernelCache, evmOptional       bool
		openWriters                      string
		allowInert                       bool
	)
	fs.StringVar(&configPath, "config", "", "JSON config `FILE`")
	fs.Var(&watch, "watch", "enforce on the file system mounted at `PATH`, a mount of its root: every mount of it, in every namespace (repeatable)")
	fs.StringVar(&pol, "policy", "", "IMA policy `FILE`, or built-in tcb, appraise_tcb, tcb|appraise_tcb")
	fs.Var(&certs, "cert", "trusted certificate `FILE`, DER or PEM (repeatable)")
	fs.StringVar(&evmKey, "evmkey", "", "EVM key `FILE` (intact evmkey) to check security.evm HMACs; files without security.evm then fail")
	fs.Var(&evmCerts, "evm-cert", "certificate `FILE` trusted for security.evm signatures only (repeatable); files without security.evm then fail")
	fs.BoolVar(&evmOptional, "evm-optional", false, "with an EVM key or EVM certificates, allow files without security.evm (migrations only; warns at start)")
	fs.StringVar(&evmPass, "evmkey-passphrase-file", "", "`FILE` holding the EVM key's passphrase (default: $INTACTD_EVM_PASSPHRASE)")
	fs.StringVar(&mode, "mode", "", "enforce (deny with EPERM) or log (allow and record)")
	fs.StringVar(&tpmS, "tpm", "", "TPM `SPEC` for measurements: /dev/tpmrm0, swtpm:HOST:PORT, or sim (the embedded simulator: builds with -tags intact_sim only)")
	fs.IntVar(&pcr, "pcr", 0, fmt.Sprintf("PCR measurements extend (default %d)", mlog.DefaultPCR))
	fs.StringVar(&stateDir, "state-dir", "", "`DIR` for the measurement list and control socket (default /var/lib/intactd)")
	fs.StringVar(&socket, "socket", "", "control socket `PATH` (default STATE_DIR/intactd.sock)")
	fs.StringVar(&metrics, "metrics-listen", "", "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9464)")
	fs.StringVar(&agentListen, "agent-listen", "", "serve the attestation agent (HTTPS) on `ADDR` (e.g. 0.0.0.0:9443)")
	fs.DurationVar(&deadline, "deadline", 0, "bound on one decision (default 2s)")
	fs.StringVar(&failV, "fail-verdict", "", "verdict when the deadline passes or a decision fails: deny or allow")
	fs.StringVar(&logFormat, "log-format", "", "json or text")
	fs.StringVar(&logLevel, "log-level", "", "debug, info, warn or error")
	fs.BoolVar(&noKernelCache, "no-kernel-cache", false, "do not cache verified files in the kernel (ignore marks)")
	fs.StringVar(&openWriters, "open-writers", "", "a file open for write elsewhere (write fd, shared writable mapping) under an appraise rule: fail (default) or appraise at every access, never cached")
	fs.BoolVar(&allowInert, "allow-inert-policy", false, "start even if no policy rule can act (empty, only dont_* or write-mask rules)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	c := defaults()
	if describe != nil {
		describe(fs)
		return c, errDescribed
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *showVersion {
		return c, errVersion
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if configPath != "" {
		if err := loadConfig(configPath, &c); err != nil {
			return c, err
		}
	}
	setS := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	if len(watch) > 0 {
		c.Watch = watch
	}
	if len(certs) > 0 {
		c.Certs = certs
	}
	if len(evmCerts) > 0 {
		c.EVMCerts = evmCerts
	}
	if evmOptional {
		c.EVMOptional = true
	}
	setS(&c.Policy, pol)
	setS(&c.EVMKey, evmKey)
	setS(&c.EVMPassphraseFile, evmPass)
	setS(&c.Mode, mode)
	setS(&c.TPM, tpmS)
	setS(&c.StateDir, stateDir)
	setS(&c.Socket, socket)
	setS(&c.MetricsListen, metrics)
	setS(&c.AgentListen, agentListen)
	setS(&c.FailVerdict, failV)
	setS(&c.LogFormat, logFormat)
	setS(&c.LogLevel, logLevel)
	setS(&c.OpenWriters, openWriters)
	if deadline != 0 {
		c.Deadline.Duration = deadline
	}
	if pcr != 0 {
		c.PCR = pcr
	}
	if noKernelCache {
		c.NoKernelCache = true
	}
	if allowInert {
		c.AllowInertPolicy = true
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(c.StateDir, "intactd.sock")
	}
	return c, c.Validate()
}
