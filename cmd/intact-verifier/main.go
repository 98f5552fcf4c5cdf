// SPDX-License-Identifier: Apache-2.0

// Command intact-verifier attests machines running intact's agent: it
// enrolls them, checks their TPM quotes and measurement lists at an
// interval against runtime policies, and serves an operator API. The
// same binary is the API's client. See docs/attestation.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `intact-verifier attests machines running intact's agent.

Usage:
    intact-verifier serve --state DIR (--ek-ca DIR | --ek-allow FILE)... [--listen ADDR] [--interval 2s]
                          [--policy-cert FILE]...
                          [--history 168h] [--history-heartbeat 1h]
                          [--max-attest-records 500000] [--max-attest-bytes 67108864]
                          [--webhook URL... --webhook-secret FILE] [--webhook-max-backoff 5m]
    intact-verifier [client flags] agents add ID ADDR --policy NAME [--cert FILE]
    intact-verifier [client flags] agents list
    intact-verifier [client flags] agents show [--json] ID     (state, last attestation, history, timeline)
    intact-verifier [client flags] agents ear ID              (the signed attestation result)
    intact-verifier [client flags] agents remove ID
    intact-verifier [client flags] policy add NAME FILE
    intact-verifier [client flags] policy show NAME
    intact-verifier ek ADDR [--cert FILE] [--ek-ca DIR]... [--ek-allow FILE]...
                       (an agent's endorsement key: its hash for --ek-allow, its
                       certificate, and whether it chains; exit 1 if it does not)

Client flags (before or after the subcommand):
    --state DIR        the server's state directory: its api-token and
                       verifier.crt are used (for commands on the same host)
    --server URL       https://HOST:PORT (default https://127.0.0.1:8443)
    --token-file FILE  file holding the api token
    --ca FILE          the server's certificate (PEM), pinned

Exit status: 0 ok, 1 an agent shown is failed, 2 a usage or operational error.

Examples:
    intact-verifier serve --state /var/lib/intact-verifier --ek-ca /usr/share/intact/ek-ca
    intact-verifier --state /var/lib/intact-verifier policy add web web-policy.json
    intact-verifier --state /var/lib/intact-verifier agents add web1 10.0.0.5:9443 --policy web
    intact-verifier --state /var/lib/intact-verifier agents show web1
`

// errFailed makes the exit status 1: an agent shown is failed.
var errFailed = errors.New("agent failed attestation")

// usageError is a command-line mistake (exit 2 with a hint).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

type env struct {
	stdout, stderr io.Writer
}

func main() {
	os.Exit(run(&env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

func run(e *env, args []string) int {
	err := dispatch(e, args)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(e.stdout, usage)
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "intact-verifier: error: %v\n", err)
		fmt.Fprintf(e.stderr, "intact-verifier: hint: run \"intact-verifier -h\" for usage\n")
		return 2
	default:
		fmt.Fprintf(e.stderr, "intact-verifier: error: %v\n", err)
		return 2
	}
}

func dispatch(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return flag.ErrHelp
	}
	if args[0] == "serve" {
		return cmdServe(e, args[1:])
	}
	if args[0] == "ek" {
		return cmdEK(e, args[1:])
	}
	// Client commands: client flags anywhere, then the words.
	fs := flag.NewFlagSet("intact-verifier", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &clientFlags{}
	c.register(fs)
	var jsonOut bool
	var policy, certFile string
	fs.BoolVar(&jsonOut, "json", false, "")
	fs.StringVar(&policy, "policy", "", "")
	fs.StringVar(&certFile, "cert", "", "")
	words, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(words) < 2 {
		return usagef("want a command such as \"agents list\"")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	switch words[0] + " " + words[1] {
	case "agents add":
		if len(words) != 4 || policy == "" {
			return usagef("usage: agents add ID ADDR --policy NAME [--cert FILE]")
		}
		return cl.addAgent(e, words[2], words[3], policy, certFile)
	case "agents list":
		return cl.listAgents(e)
	case "agents show":
		if len(words) != 3 {
			return usagef("usage: agents show [--json] ID")
		}
		return cl.showAgent(e, words[2], jsonOut)
	case "agents ear":
		if len(words) != 3 {
			return usagef("usage: agents ear ID")
		}
		return cl.agentEAR(e, words[2])
	case "agents remove":
		if len(words) != 3 {
			return usagef("usage: agents remove ID")
		}
		return cl.removeAgent(e, words[2])
	case "policy add":
		if len(words) != 4 {
			return usagef("usage: policy add NAME FILE")
		}
		return cl.addPolicy(e, words[2], words[3])
	case "policy show":
		if len(words) != 3 {
			return usagef("usage: policy show NAME")
		}
		return cl.showPolicy(e, words[2])
	}
	return usagef("unknown command %q", strings.Join(words[:2], " "))
}

// parseInterspersed parses flags anywhere among the words.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
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
