// SPDX-License-Identifier: Apache-2.0

// Command intact-verifier attests machines running intact's agent: it
// enrolls them, checks their TPM quotes and measurement lists at an
// interval against runtime policies, and serves an operator API. The
// same binary is the API's client. See docs/attestation.md.
package main

// The reference (docs/intact-verifier-flags.md, intact-verifier(8),
// dist/completion) is generated from the commands' flags:
//go:generate go test -count=1 -run ^TestReference$ . -args -update

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/intactsec/intact/internal/version"
)

const usage = `intact-verifier attests machines running intact's agent.

Usage:
    intact-verifier serve --state DIR (--ek-ca DIR | --ek-allow FILE)... [flags]
    intact-verifier ek ADDR [flags]
    intact-verifier [client flags] COMMAND [flags] ARGS

Commands:
%s
Client flags (before or after the command; see "intact-verifier COMMAND -h"):
    --state DIR        the server's state directory: its api-token and
                       verifier.crt are used (for commands on the same host)
    --server URL       https://HOST:PORT (default https://127.0.0.1:8443)
    --token-file FILE  file holding the api token
    --ca FILE          the server's certificate (PEM), pinned
    --config FILE      a client configuration file (JSON)
Each may instead come from the environment (INTACT_VERIFIER_STATE,
INTACT_VERIFIER_SERVER, INTACT_VERIFIER_TOKEN_FILE or INTACT_VERIFIER_TOKEN,
INTACT_VERIFIER_CA, INTACT_VERIFIER_CONFIG) or from the configuration file
(default ~/.config/intact-verifier/client.json: {"server": ..., "state": ...,
"token_file": ..., "ca": ...}); a flag wins over the environment, the
environment over the file.

Exit status: 0 ok, 1 an agent shown or listed is failed (or its EAR does not
verify), 2 a usage or operational error.

Examples:
    intact-verifier serve --state /var/lib/intact-verifier --ek-ca /usr/share/intact/ek-ca
    export INTACT_VERIFIER_STATE=/var/lib/intact-verifier
    intact-verifier policy add web web-policy.json
    intact-verifier agents add web1 10.0.0.5:9443 --policy web
    intact-verifier agents show web1
`

// errFailed makes the exit status 1: an agent shown is failed (or
// unreachable, or gap-after-reboot: not trusted now).
var errFailed = errors.New("agent failed attestation")

// errDescribed ends a command whose flags went to env.describe.
var errDescribed = errors.New("flags described")

// usageError is a command-line mistake (exit 2 with a hint).
type usageError struct {
	msg string
	cmd string // the command whose -h helps, or ""
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// describe, when set, receives a command's flag set and help instead
	// of parsing (the reference generator, docs_test.go).
	describe func(fs *flag.FlagSet, help string)
}

func main() {
	os.Exit(run(&env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:]))
}

func run(e *env, args []string) int {
	err := dispatch(e, args)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(e.stdout, usage, commandList())
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "intact-verifier: error: %v\n", err)
		if ue.cmd != "" {
			fmt.Fprintf(e.stderr, "intact-verifier: hint: run \"intact-verifier %s -h\" for usage\n", ue.cmd)
		} else {
			fmt.Fprintf(e.stderr, "intact-verifier: hint: run \"intact-verifier -h\" for usage\n")
		}
		return 2
	default:
		fmt.Fprintf(e.stderr, "intact-verifier: error: %v\n", err)
		return 2
	}
}

// errHelpShown ends a command whose -h was printed.
var errHelpShown = errors.New("help shown")

// printHelp prints a command's help and its flags (flag.PrintDefaults).
func printHelp(e *env, help string, fs *flag.FlagSet) error {
	fmt.Fprintf(e.stdout, "%s\n\nFlags:\n", strings.TrimSpace(help))
	fs.SetOutput(e.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return errHelpShown
}

// clientOpts are the values of the client commands' own flags.
type clientOpts struct {
	json, decode bool
	policy, cert string
	note         string
}

// clientCommand is a command of the operator API's client.
type clientCommand struct {
	name    string // "agents add"
	args    string // operands and flags, for the help
	summary string
	nargs   int // operands after the name
	help    string
	flags   func(fs *flag.FlagSet, o *clientOpts)
	run     func(e *env, c *client, o *clientOpts, args []string) error
}

var clientCommands = []clientCommand{
	{name: "agents add", args: "ID ADDR --policy NAME [--cert FILE]", nargs: 2,
		summary: "enroll an agent and start attesting it",
		flags: func(fs *flag.FlagSet, o *clientOpts) {
			fs.StringVar(&o.policy, "policy", "", "the runtime policy `NAME` to judge the agent by (required)")
			fs.StringVar(&o.cert, "cert", "", "the agent's TLS certificate `FILE` (PEM), pinned; default: trusted on first use")
		},
		run: func(e *env, c *client, o *clientOpts, a []string) error {
			if o.policy == "" {
				return &usageError{msg: "agents add: --policy NAME is required", cmd: "agents add"}
			}
			return c.addAgent(e, a[0], a[1], o.policy, o.cert)
		}},
	{name: "agents list", summary: "list the agents and their states (exit 1 if one is failed, unreachable or gap-after-reboot)",
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.listAgents(e) }},
	{name: "agents show", args: "[--json] ID", nargs: 1,
		summary: "an agent's state, history and timeline (exit 1 if failed, unreachable or gap-after-reboot)",
		flags: func(fs *flag.FlagSet, o *clientOpts) {
			fs.BoolVar(&o.json, "json", false, "print the API's JSON reply")
		},
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.showAgent(e, a[0], o.json) }},
	{name: "agents ear", args: "[--decode] ID", nargs: 1,
		summary: "the agent's signed attestation result (EAR, a JWT)",
		help: `
Prints the EAR (IETF RATS attestation result) the verifier signs now for
the agent: a JWT (ES256). With --decode it fetches the verifier's key
(GET /v1/ear-key), verifies the token and prints its claims as JSON; exit
1 if it does not verify.
`,
		flags: func(fs *flag.FlagSet, o *clientOpts) {
			fs.BoolVar(&o.decode, "decode", false, "verify the EAR with the verifier's key and print its claims as JSON (exit 1 if it does not verify)")
		},
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.agentEAR(e, a[0], o.decode) }},
	{name: "agents reactivate", args: "ID [--note TEXT]", nargs: 1,
		summary: "clear a security failure, attest again (in the timeline)",
		help: `
A security failure stops attestation of the agent until an operator
decides. After deciding (the policy updated, the host reinstalled, or
what ran accepted), reactivate: the agent goes back to "enrolled", a
"reactivated" event with the note goes to its timeline and the webhooks,
and attestation starts again from where the failure left it; records
already judged, the failing ones included, are not judged again. An agent
not failed for a security reason is refused.
`,
		flags: func(fs *flag.FlagSet, o *clientOpts) {
			fs.StringVar(&o.note, "note", "", "the operator's reason, recorded in the timeline")
		},
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.reactivateAgent(e, a[0], o.note) }},
	{name: "agents ack", args: "ID", nargs: 1,
		summary: "accept an agent's reboot after a gap in attestation",
		help: `
An agent whose machine rebooted after a gap in attestation (the agent
unreachable, or the verifier down) is "gap-after-reboot": what ran
before the reboot, after the last verified quote, is unknown. Its new
boot is attested as usual, but it is not trusted until an operator
acknowledges the gap: an "acknowledged" event goes to its timeline, and
its next good attestation makes it "trusted". Exit 2 (409) if it has no
such gap. With replicas sharing a store, only the replica that attests
the agent (agents list: REPLICA) takes it: another answers 409 naming
that replica.
`,
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.ackAgent(e, a[0]) }},
	{name: "agents remove", args: "ID", nargs: 1, summary: "stop attesting an agent and forget it",
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.removeAgent(e, a[0]) }},
	{name: "policy add", args: "NAME FILE", nargs: 2, summary: "store (or replace) a runtime policy",
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.addPolicy(e, a[0], a[1]) }},
	{name: "policy list", summary: "list the stored runtime policies",
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.listPolicies(e) }},
	{name: "policy show", args: "NAME", nargs: 1, summary: "print a stored runtime policy",
		run: func(e *env, c *client, o *clientOpts, a []string) error { return c.showPolicy(e, a[0]) }},
}

func commandList() string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %-18s %s\n", "serve", "run the verifier and its operator API")
	fmt.Fprintf(&b, "    %-18s %s\n", "ek", "an agent's endorsement key: hash, certificate, verdict")
	for _, c := range clientCommands {
		fmt.Fprintf(&b, "    %-18s %s\n", c.name, c.summary)
	}
	return b.String()
}

func (c *clientCommand) synopsis() string {
	s := "intact-verifier [client flags] " + c.name
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// flagSet is the command's flags: the client flags and its own.
func (c *clientCommand) flagSet(cf *clientFlags, o *clientOpts) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf.register(fs)
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}

func (c *clientCommand) helpText() string {
	return "\nUsage: " + c.synopsis() + "\n\n" + strings.ToUpper(c.summary[:1]) + c.summary[1:] + ".\n" + c.help
}

// allClientFlags is a flag set with every client command's flags, to
// find the command words among flags that take values.
func allClientFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("intact-verifier", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf clientFlags
	cf.register(fs)
	var o clientOpts
	for _, c := range clientCommands {
		if c.flags == nil {
			continue
		}
		scratch := flag.NewFlagSet("", flag.ContinueOnError)
		c.flags(scratch, &o)
		scratch.VisitAll(func(f *flag.Flag) {
			if fs.Lookup(f.Name) == nil {
				fs.Var(f.Value, f.Name, f.Usage)
			}
		})
	}
	return fs
}

func dispatch(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	switch args[0] {
	case "-h", "--help", "help":
		return flag.ErrHelp
	case "--version", "-version", "version":
		fmt.Fprintln(e.stdout, version.Line("intact-verifier"))
		return nil
	case "serve":
		return cmdServe(e, args[1:])
	case "ek":
		return cmdEK(e, args[1:])
	}
	// Client commands: client flags anywhere, then the words. The words
	// are found with every command's flags, then the command parses
	// with its own so that a flag of another command is refused.
	words, err := parseInterspersed(allClientFlags(), args)
	help := errors.Is(err, flag.ErrHelp)
	if err != nil && !help {
		return err
	}
	var cmd *clientCommand
	for i := range clientCommands {
		if len(words) >= 2 && clientCommands[i].name == words[0]+" "+words[1] {
			cmd = &clientCommands[i]
		}
	}
	if cmd == nil {
		if help {
			return flag.ErrHelp
		}
		if len(words) < 2 {
			return usagef("want a command such as \"agents list\"")
		}
		return usagef("unknown command %q", strings.Join(words[:2], " "))
	}
	var cf clientFlags
	var o clientOpts
	fs := cmd.flagSet(&cf, &o)
	if e.describe != nil {
		e.describe(fs, cmd.helpText())
		return errDescribed
	}
	words, err = parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return printHelp(e, cmd.helpText(), fs)
	}
	if err != nil {
		return &usageError{msg: err.Error(), cmd: cmd.name}
	}
	if len(words)-2 != cmd.nargs {
		return &usageError{msg: "usage: " + cmd.synopsis(), cmd: cmd.name}
	}
	cl, err := cf.client(e, fs)
	if err != nil {
		return err
	}
	return cmd.run(e, cl, &o, words[2:])
}

// parseInterspersed parses flags anywhere among the words.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return words, err // the words so far name the command
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return words, nil
		}
		if args[0] == "--" {
			return append(words, args[1:]...), nil
		}
		words = append(words, args[0])
		args = args[1:]
	}
}
