// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
)

// generateBootPolicy is "intact policy generate --eventlog LOG...": a
// measured-boot policy learned from known-good boot event logs.
func generateBootPolicy(e *env, logs []string, algo, name, out string) error {
	bank, err := digest.ParseAlgo(algo)
	if err != nil {
		return usageErrorf("policy generate", "--algo %q: %v", algo, err)
	}
	var all [][]eventlog.Event
	for _, p := range logs {
		l, err := eventlog.ReadFile(p)
		if err != nil {
			return fmt.Errorf("boot event log %s: %w", p, unwrapPathError(err))
		}
		if !slices.Contains(l.Banks(), bank) {
			return fmt.Errorf("%s: the log has no %s digests (it has %v; give --algo)", p, bank, l.Banks())
		}
		evs, err := l.UnverifiedEvents(bank)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		all = append(all, evs)
	}
	pol, err := bootpolicy.Generate(name, bank, all...)
	if err != nil {
		return err
	}
	if _, err := bootpolicy.Compile(pol); err != nil {
		return err
	}
	b, err := bootpolicy.Canonical(pol)
	if err != nil {
		return err
	}
	if err := writeOut(e, out, b); err != nil {
		return err
	}
	events := 0
	for _, pp := range pol.PCRs {
		events += len(pp.Events)
	}
	sb := pol.SecureBoot
	if sb == "" {
		sb = "not checked"
	}
	fmt.Fprintf(e.stderr, "intact: boot policy from %d log(s): %d pcrs, %d events judged one by one, secure boot %s\n", len(logs), len(pol.PCRs), events, sb)
	return nil
}

// evalBootPolicy is "intact policy eval --eventlog LOG POLICY". It
// judges what the log claims: nothing here checks the log against a
// TPM's PCRs (the verifier does, before it applies the policy).
func evalBootPolicy(e *env, policyPath, logPath string, now time.Time, asJSON bool) error {
	b, err := os.ReadFile(policyPath)
	if err != nil {
		return fmt.Errorf("reading policy %s: %w", policyPath, unwrapPathError(err))
	}
	c, err := bootpolicy.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", policyPath, err)
	}
	l, err := eventlog.ReadFile(logPath)
	if err != nil {
		return fmt.Errorf("boot event log %s: %w", logPath, unwrapPathError(err))
	}
	evs, err := l.UnverifiedEvents(c.Bank())
	if err != nil {
		return fmt.Errorf("%s: %w", logPath, err)
	}
	findings := c.Evaluate(evs, now)
	if asJSON {
		if findings == nil {
			findings = []bootpolicy.Finding{}
		}
		js, _ := json.MarshalIndent(findings, "", " ")
		fmt.Fprintf(e.stdout, "%s\n", js)
	} else {
		for _, f := range findings {
			fmt.Fprintf(e.stdout, "%s\n", f)
		}
		fmt.Fprintf(e.stdout, "%d events, %d findings\n", len(evs), len(findings))
	}
	if len(findings) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
