// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/policy"
)

const policyUsage = `
Usage: intact policy check FILE|NAME
       intact policy generate|import-keylime|merge|diff|window|sign|verify-signature|eval ...
                 (runtime policies: intact policy generate -h)

Validates an IMA policy in the kernel's policy language (one rule a line:
action, conditions, options; '#' comments) as intactd understands it, and
prints it normalized: aliases resolved, tokens in the kernel's order,
comments dropped. NAME is a built-in policy: tcb, appraise_tcb, or both
joined by '|'.

Every token the kernel accepts but intactd cannot honour (LSM labels,
kernel-only hooks such as MODULE_CHECK, hash, permit_directio, ...) is an
error naming its line and column; nothing is silently ignored.

Exit status 0 when the policy is valid, 1 when it is not, 2 when it
cannot be read.
`

func cmdPolicy(e *env, args []string) error {
	if len(args) > 0 && runtimePolicyCommand(args[0]) != nil {
		return runtimePolicyCommand(args[0])(e, args[1:]) // rtpolicy.go
	}
	f := newFlags(e, "policy", policyUsage)
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return usageErrorf("policy", "missing subcommand (want %s)", policySubcommands())
	}
	if ops[0] != "check" {
		return usageErrorf("policy", "unknown subcommand %q (want %s)", ops[0], policySubcommands())
	}
	if len(ops) != 2 {
		return usageErrorf("policy", "policy check takes one FILE or built-in NAME")
	}
	p, err := readPolicy(ops[1])
	var se *policy.SyntaxError
	if errors.As(err, &se) {
		errorf(e, "%v", se)
		return errIntegrity
	}
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, p.String())
	return nil
}

func readPolicy(spec string) (*policy.Policy, error) {
	if !strings.Contains(spec, "/") && policy.IsBuiltin(spec) {
		return policy.Builtin(spec)
	}
	b, err := readNamed("policy", spec, readfile.Policy)
	if err != nil {
		return nil, withHint(err,
			"built-in policies are tcb, appraise_tcb and tcb|appraise_tcb")
	}
	return policy.Parse(spec, b)
}

// policySubcommands lists every subcommand of intact policy: check (the
// kernel's IMA policy language) and the runtime policy commands.
func policySubcommands() string {
	return "check, " + strings.Join(rtpolicyCommandNames, ", ")
}
