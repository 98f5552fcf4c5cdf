// SPDX-License-Identifier: Apache-2.0

// Package policy parses, normalizes and evaluates the kernel's IMA policy
// language (Documentation/ABI/testing/ima_policy) for a userspace integrity
// daemon. It is pure: no syscalls, no file access.
//
// # Language
//
// A policy is a list of rules, one a line: an action (measure, dont_measure,
// appraise, dont_appraise, audit) followed by conditions (func=, mask=,
// fsmagic=, fsname=, fsuuid=, uid, euid, gid, egid, fowner, fgroup with the
// operators =, < and >) and options (appraise_type=imasig, pcr=,
// template=). Tokens are separated by spaces or tabs; '#' starts a comment.
// Everything the kernel accepts but a userspace daemon cannot honour (LSM
// labels, kernel-only hooks such as MODULE_CHECK, hash/dont_hash,
// permit_directio, ...) is rejected with a [*SyntaxError] naming the line and
// column, so that nothing is silently ignored.
//
// # Matching
//
// [Policy.Decide] evaluates a [Subject] the way the kernel's
// ima_match_policy does: rules are scanned in order, and the first matching
// rule of each action class (measure/dont_measure, appraise/dont_appraise,
// audit) decides that class.
//
// # Hooks seen from userspace
//
// fanotify reports opens (FILE_CHECK) and exec opens (BPRM_CHECK) but no
// mmap. MMAP_CHECK and MMAP_CHECK_REQPROT rules are accepted and the caller
// (intactd) evaluates them at open time, with mask MAY_EXEC, for every open
// that is not an exec: any file opened may later be mapped executable.
package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Action is a rule's action, with the kernel's bit values.
type Action uint16

// The actions a userspace daemon can carry out.
const (
	Measure      Action = 0x1
	DontMeasure  Action = 0x2
	Appraise     Action = 0x4
	DontAppraise Action = 0x8
	Audit        Action = 0x40
)

var actionNames = []struct {
	a    Action
	name string
}{
	{Measure, "measure"}, {DontMeasure, "dont_measure"}, {Appraise, "appraise"},
	{DontAppraise, "dont_appraise"}, {Audit, "audit"},
}

func (a Action) String() string {
	for _, n := range actionNames {
		if n.a == a {
			return n.name
		}
	}
	return fmt.Sprintf("action(0x%x)", uint16(a))
}

// class is the action class an action belongs to (measure and dont_measure
// are one class).
func (a Action) class() Action {
	switch a {
	case Measure, DontMeasure:
		return Measure
	case Appraise, DontAppraise:
		return Appraise
	}
	return a
}

// Func is the hook a rule applies to (func=), in the kernel's enum order.
type Func uint8

// The hooks a userspace daemon sees. FuncNone in a rule means any hook.
const (
	FuncNone Func = iota
	FileCheck
	MmapCheck
	MmapCheckReqprot
	BprmCheck
)

var funcNames = map[Func]string{
	FileCheck: "FILE_CHECK", MmapCheck: "MMAP_CHECK",
	MmapCheckReqprot: "MMAP_CHECK_REQPROT", BprmCheck: "BPRM_CHECK",
}

func (f Func) String() string {
	if n, ok := funcNames[f]; ok {
		return n
	}
	if f == FuncNone {
		return "NONE"
	}
	return fmt.Sprintf("func(%d)", uint8(f))
}

// Mask bits (mask=), as the kernel's MAY_* values.
const (
	MayExec   uint32 = 0x1
	MayWrite  uint32 = 0x2
	MayRead   uint32 = 0x4
	MayAppend uint32 = 0x8
)

var maskNames = []struct {
	m    uint32
	name string
}{{MayExec, "MAY_EXEC"}, {MayWrite, "MAY_WRITE"}, {MayRead, "MAY_READ"}, {MayAppend, "MAY_APPEND"}}

// Op is a comparison operator of an id condition.
type Op uint8

// The operators: uid=0, uid<1000, uid>1000.
const (
	OpEq Op = iota
	OpLt
	OpGt
)

func (o Op) String() string { return [...]string{"=", "<", ">"}[o] }

func (o Op) match(have, want uint32) bool {
	switch o {
	case OpLt:
		return have < want
	case OpGt:
		return have > want
	}
	return have == want
}

// IDField names the id a condition compares.
type IDField uint8

// The id conditions, in the kernel's printing order.
const (
	UID IDField = iota
	GID
	EUID
	EGID
	FOwner
	FGroup
	numIDFields
)

var idNames = [...]string{"uid", "gid", "euid", "egid", "fowner", "fgroup"}

func (f IDField) String() string { return idNames[f] }

// IDCond is one id condition of a rule, such as euid<1000.
type IDCond struct {
	Field IDField
	Op    Op
	ID    uint32
}

// Rule is one parsed rule. Zero-valued conditions are absent.
type Rule struct {
	Action Action
	Func   Func
	// Mask, when non-zero, must equal the requested mask; with MaskIn set
	// it is enough that a bit is contained in it (mask=^MAY_READ).
	Mask     uint32
	MaskIn   bool
	FSMagic  uint64
	HasMagic bool
	FSName   string
	FSUUID   [16]byte
	HasUUID  bool
	IDs      []IDCond
	// SigRequired is appraise_type=imasig.
	SigRequired bool
	// PCR is pcr= (measure rules only), set when HasPCR.
	PCR    int
	HasPCR bool
	// Template is template= (measure rules only).
	Template string
	// Line is the rule's line in its source (1-based), for audit records.
	Line int
}

// Policy is an ordered list of rules.
type Policy struct {
	Rules []Rule
	// Source names where the policy came from (a file or a built-in name).
	Source string
}

// Errors wrapped by [*SyntaxError].
var (
	// ErrSyntax: the rule is malformed (bad value, duplicate condition,
	// missing action, option on the wrong action).
	ErrSyntax = errors.New("invalid policy")
	// ErrUnsupported: the token is valid kernel IMA policy but has no
	// meaning for a userspace daemon.
	ErrUnsupported = errors.New("unsupported in userspace")
)

// SyntaxError reports a policy error at a line and column (both 1-based).
type SyntaxError struct {
	Source string
	Line   int
	Col    int
	Token  string
	Msg    string
	Err    error // ErrSyntax or ErrUnsupported
}

func (e *SyntaxError) Error() string {
	src := e.Source
	if src == "" {
		src = "policy"
	}
	s := fmt.Sprintf("%s:%d:%d: %s", src, e.Line, e.Col, e.Msg)
	if e.Token != "" {
		s += fmt.Sprintf(" (%q)", e.Token)
	}
	return s
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// DefaultPCR is the PCR measure rules extend without pcr=
// (CONFIG_IMA_MEASURE_PCR_IDX).
const DefaultPCR = 10

// String prints the policy in normalized form: one rule a line, tokens in
// the kernel's order, aliases resolved, comments dropped.
func (p *Policy) String() string {
	var b strings.Builder
	for i := range p.Rules {
		b.WriteString(p.Rules[i].String())
		b.WriteByte('\n')
	}
	return b.String()
}
