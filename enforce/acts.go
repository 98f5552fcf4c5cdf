package enforce

import (
	"errors"
	"fmt"
	"strings"

	"github.com/intactsec/intact/policy"
)

// ErrInertPolicy: no rule of the policy can ever act on an access the
// engine decides, so enforcing it would enforce nothing.
var ErrInertPolicy = errors.New("the policy cannot act on any access intactd sees")

// InertPolicyError says why a policy cannot act, rule by rule.
type InertPolicyError struct {
	Source  string
	Reasons []string
}

func (e *InertPolicyError) Error() string {
	src := e.Source
	if src == "" {
		src = "policy"
	}
	return fmt.Sprintf("%s: %v (intactd sees execs as BPRM_CHECK with MAY_EXEC and opens as FILE_CHECK with MAY_READ and MMAP_CHECK with MAY_EXEC): %s",
		src, ErrInertPolicy, strings.Join(e.Reasons, "; "))
}

func (e *InertPolicyError) Unwrap() error { return ErrInertPolicy }

// hook is one (func, mask) pair the engine evaluates (policyDecision).
type hook struct {
	fn   policy.Func
	mask uint32
}

var hooks = []hook{
	{policy.BprmCheck, policy.MayExec},
	{policy.FileCheck, policy.MayRead},
	{policy.MmapCheck, policy.MayExec},
}

// CheckActs returns an *InertPolicyError when no measure, appraise or
// audit rule of p can match any access the engine decides: an empty
// policy, only comments, only dont_* rules, only rules for masks or hooks
// intactd never evaluates (mask=MAY_WRITE, func=MMAP_CHECK_REQPROT), or
// rules that an earlier unconditional dont_* rule of their class always
// decides first.
func CheckActs(p *policy.Policy) error {
	var reasons []string
	if len(p.Rules) == 0 {
		return &InertPolicyError{Source: p.Source, Reasons: []string{"it has no rules (empty, or only comments)"}}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		switch r.Action {
		case policy.Measure, policy.Appraise, policy.Audit:
		default:
			reasons = append(reasons, fmt.Sprintf("line %d (%s): a %s rule acts on nothing by itself", r.Line, r, r.Action))
			continue
		}
		matched, shadowed := false, -1
		for _, h := range hooks {
			if !hookMatches(r, h) {
				continue
			}
			if j := shadow(p, i, h); j >= 0 {
				shadowed = j
				continue
			}
			matched = true
		}
		switch {
		case matched:
			return nil
		case shadowed >= 0:
			reasons = append(reasons, fmt.Sprintf("line %d (%s): always decided first by line %d (%s)", r.Line, r, p.Rules[shadowed].Line, &p.Rules[shadowed]))
		default:
			reasons = append(reasons, fmt.Sprintf("line %d (%s): %s", r.Line, r, whyNot(r)))
		}
	}
	return &InertPolicyError{Source: p.Source, Reasons: reasons}
}

// hookMatches reports whether r's hook and mask conditions hold for h
// (its other conditions depend on the file and the task).
func hookMatches(r *policy.Rule, h hook) bool {
	if r.Func != policy.FuncNone && r.Func != h.fn {
		return false
	}
	if r.Mask != 0 {
		if r.MaskIn {
			return r.Mask&h.mask != 0
		}
		return r.Mask == h.mask
	}
	return true
}

// shadow returns the index of a rule before i of the same action class
// that matches every access at h (no condition but its hook and mask),
// or -1.
func shadow(p *policy.Policy, i int, h hook) int {
	for j := range i {
		o := &p.Rules[j]
		if class(o.Action) != class(p.Rules[i].Action) || !hookMatches(o, h) {
			continue
		}
		if !o.HasMagic && o.FSName == "" && !o.HasUUID && len(o.IDs) == 0 {
			return j
		}
	}
	return -1
}

func class(a policy.Action) policy.Action {
	switch a {
	case policy.DontMeasure:
		return policy.Measure
	case policy.DontAppraise:
		return policy.Appraise
	}
	return a
}

func whyNot(r *policy.Rule) string {
	switch r.Func {
	case policy.FuncNone, policy.BprmCheck, policy.FileCheck, policy.MmapCheck:
	default:
		return fmt.Sprintf("func=%s is never evaluated", r.Func)
	}
	return "its mask never matches: fanotify does not report an open's mode, so a write (MAY_WRITE, MAY_APPEND) is never seen"
}
