// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/store"
)

// ReasonBootPolicy: the verified boot event log breaks the agent's
// measured-boot policy (each finding names the PCR and the event).
const ReasonBootPolicy = "boot-policy"

// bootPolicyPrefix keeps boot policies apart from runtime policies in the
// store's policy table.
const bootPolicyPrefix = "boot:"

// IsBootPolicy reports whether a policy document is a measured-boot
// policy (package bootpolicy) rather than a runtime policy.
func IsBootPolicy(doc []byte) bool {
	var top map[string]json.RawMessage
	return json.Unmarshal(doc, &top) == nil && top["intact_boot_policy"] != nil
}

// PutBootPolicy validates and stores a measured-boot policy under name;
// runtime policies name it ("boot_policy") to apply it to their agents,
// from each agent's next boot (or enrollment) on.
func (v *Verifier) PutBootPolicy(ctx context.Context, name string, doc []byte) (*bootpolicy.Compiled, error) {
	if v.o.PolicySigners != nil {
		return nil, fmt.Errorf("%w: this verifier requires signed policies, and boot policies cannot be signed yet", bootpolicy.ErrFormat)
	}
	c, err := bootpolicy.Parse(doc)
	if err != nil {
		return nil, err
	}
	if err := v.o.Store.PutPolicy(ctx, &store.Policy{Name: bootPolicyPrefix + name, Doc: doc, Updated: v.o.Now()}); err != nil {
		return nil, err
	}
	v.mu.Lock()
	v.bootPolicies[name] = c
	v.mu.Unlock()
	return c, nil
}

// bootPolicy loads a boot policy by name: a name that is not stored, or
// a document that does not parse, is an error.
func (v *Verifier) bootPolicy(ctx context.Context, name string) (*bootpolicy.Compiled, error) {
	v.mu.Lock()
	c := v.bootPolicies[name]
	v.mu.Unlock()
	if c != nil {
		return c, nil
	}
	p, err := v.o.Store.GetPolicy(ctx, bootPolicyPrefix+name)
	if err != nil {
		return nil, fmt.Errorf("boot policy %q: %w", name, err)
	}
	if c, err = bootpolicy.Parse(p.Doc); err != nil {
		return nil, fmt.Errorf("boot policy %q: %w", name, err)
	}
	v.mu.Lock()
	v.bootPolicies[name] = c
	v.mu.Unlock()
	return c, nil
}

// judgeBoot applies a boot policy to verified boot log events.
func judgeBoot(c *bootpolicy.Compiled, p *EvidenceAppraiser, events []eventlog.Event) error {
	if c.Bank().String() != "sha256" {
		return secErr(ReasonBootPolicy, "the boot policy judges the %s bank; the verifier quotes sha256", c.Bank())
	}
	fs := c.Evaluate(events, p.Now)
	if len(fs) == 0 {
		return nil
	}
	const max = 10
	var parts []string
	for i, f := range fs {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-max))
			break
		}
		parts = append(parts, f.String())
	}
	return secErr(ReasonBootPolicy, "%s", strings.Join(parts, "; "))
}
