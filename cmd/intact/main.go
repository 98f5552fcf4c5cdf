// SPDX-License-Identifier: Apache-2.0

// Command intact labels files with kernel-compatible IMA/EVM labels and
// verifies them. See docs/cli.md.
package main

// The reference (docs/cli.md's command sections, docs/man/intact.1,
// dist/completion) is generated from the commands' flags:
//go:generate go test -count=1 -run ^TestReference$ . -args -update

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/intactsec/intact/internal/version"
	"github.com/intactsec/intact/tpm"
)

const usage = `intact labels files with IMA/EVM integrity labels and verifies them.

Usage:
    intact <command> [flags] [PATH...]

Commands:
%s
Run "intact <command> -h" for a command's flags; "intact --version"
prints the version.

Exit status: 0 all files intact, 1 an integrity failure was found,
2 a usage or operational error.

Examples:
    intact keygen --type ec-p256 --key signing.pem --cert signing.der
    intact sign --key signing.pem -r /usr/local/bin
    intact verify --cert signing.der -r /usr/local/bin
`

// command is one subcommand. Each lives in its own file and is listed here.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

var commands = []command{
	{"keygen", "make a signing key and its self-signed certificate", cmdKeygen},
	{"hash", "write digest labels (security.ima), as evmctl ima_hash", cmdHash},
	{"sign", "write signature labels (security.ima), as evmctl ima_sign", cmdSign},
	{"verify", "appraise files: content, label and signature", cmdVerify},
	{"hmac", "write EVM HMACs (security.evm) with an EVM key", cmdHMAC},
	{"evmkey", "make an EVM key, stored wrapped under a passphrase", cmdEVMKey},
	{"tpm", "read PCRs and describe the TPM", cmdTPM},
	{"measure", "measure files into a measurement list and extend a TPM PCR", cmdMeasure},
	{"log", "show, convert and replay IMA measurement lists", cmdLog},
	{"eventlog", "replay a TCG boot event log and list the boot components", cmdEventlog},
	{"manifest", "signed tree manifests: record a tree, report what was added, removed or changed", cmdManifest},
	{"policy", "check an IMA policy and print it normalized", cmdPolicy},
	{"status", "show the running intactd's decisions, denials, cache and latency", cmdStatus},
	{"version", "print the version", cmdVersion},
}

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// tpms opens --tpm specs; its Simulator is set only in builds with
	// the intact_sim tag (sim.go) and in tests.
	tpms tpm.Opener
	// stderrIsTerminal enables progress output.
	stderrIsTerminal bool
	// describe, when set, receives each command's flags instead of
	// parsing them; the command then returns errDescribed. Only the
	// reference generator (docs_test.go) sets it.
	describe func(*flagSet)
}

func main() {
	e := &env{
		stdin:            os.Stdin,
		stdout:           os.Stdout,
		stderr:           os.Stderr,
		getenv:           os.Getenv,
		tpms:             tpmOpener(),
		stderrIsTerminal: isTerminal(os.Stderr),
	}
	os.Exit(run(e, os.Args[1:]))
}

func commandList() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "    %-10s %s\n", c.name, c.summary)
	}
	return b.String()
}

// run runs the command line args and returns the exit status.
func run(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, usage, commandList())
		return 2
	}
	name := args[0]
	if name == "--version" {
		return report(e, cmdVersion(e, args[1:]))
	}
	if name == "-h" || name == "--help" || name == "help" {
		fmt.Fprintf(e.stdout, usage, commandList())
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			return report(e, c.run(e, args[1:]))
		}
	}
	errorf(e, "unknown command %q", name)
	hintf(e, "run \"intact -h\" for the list of commands")
	return 2
}

// exitError carries an exit status and hints for the user.
type exitError struct {
	code  int
	err   error // nil: the command already reported; exit silently
	hints []string
}

func (x *exitError) Error() string {
	if x.err == nil {
		return fmt.Sprintf("exit status %d", x.code)
	}
	return x.err.Error()
}

func (x *exitError) Unwrap() error { return x.err }

// errIntegrity ends a command that found an integrity failure and already
// printed it.
var errIntegrity = &exitError{code: 1}

// errHelp ends a command whose usage was asked for.
var errHelp = &exitError{code: 0}

// errDescribed ends a command whose flags were described (env.describe).
var errDescribed = &exitError{code: 0}

// usageErrorf is a mistake on the command line (exit 2).
func usageErrorf(cmd, format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...),
		hints: []string{fmt.Sprintf("run \"intact %s -h\" for usage", cmd)}}
}

// withHint attaches a hint to an operational error (exit 2).
func withHint(err error, hint string) error {
	return &exitError{code: 2, err: err, hints: []string{hint}}
}

func report(e *env, err error) int {
	if err == nil {
		return 0
	}
	code := 2
	var x *exitError
	if errors.As(err, &x) {
		code = x.code
		if x.err == nil {
			return code
		}
		errorf(e, "%v", x.err)
		for _, h := range x.hints {
			hintf(e, "%s", h)
		}
		return code
	}
	errorf(e, "%v", err)
	return code
}

func errorf(e *env, format string, args ...any) {
	fmt.Fprintf(e.stderr, "intact: error: "+format+"\n", args...)
}

func hintf(e *env, format string, args ...any) {
	fmt.Fprintf(e.stderr, "intact: hint: "+format+"\n", args...)
}

func warnf(e *env, format string, args ...any) {
	fmt.Fprintf(e.stderr, "intact: warning: "+format+"\n", args...)
}

func cmdVersion(e *env, args []string) error {
	if len(args) > 0 {
		return usageErrorf("version", "unexpected argument %q", args[0])
	}
	fmt.Fprintln(e.stdout, version.Line("intact"))
	return nil
}
