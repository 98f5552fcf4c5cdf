// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// funcTokens maps every func= value the kernel knows to the hook intactd
// uses, or to FuncNone when the hook is kernel-only.
var funcTokens = map[string]Func{
	"FILE_CHECK": FileCheck, "PATH_CHECK": FileCheck,
	"MMAP_CHECK": MmapCheck, "FILE_MMAP": MmapCheck,
	"MMAP_CHECK_REQPROT": MmapCheckReqprot,
	"BPRM_CHECK":         BprmCheck,
	"CREDS_CHECK":        FuncNone, "MODULE_CHECK": FuncNone, "FIRMWARE_CHECK": FuncNone,
	"KEXEC_KERNEL_CHECK": FuncNone, "KEXEC_INITRAMFS_CHECK": FuncNone,
	"POLICY_CHECK": FuncNone, "KEXEC_CMDLINE": FuncNone, "KEY_CHECK": FuncNone,
	"CRITICAL_DATA": FuncNone, "SETXATTR_CHECK": FuncNone,
}

// kernelOnly are kernel policy tokens with no meaning for a daemon, with the
// reason given in the error.
var kernelOnly = map[string]string{
	"hash":            "hash/dont_hash write security.ima in the kernel",
	"dont_hash":       "hash/dont_hash write security.ima in the kernel",
	"obj_user":        "LSM labels are not available to intactd",
	"obj_role":        "LSM labels are not available to intactd",
	"obj_type":        "LSM labels are not available to intactd",
	"subj_user":       "LSM labels are not available to intactd",
	"subj_role":       "LSM labels are not available to intactd",
	"subj_type":       "LSM labels are not available to intactd",
	"appraise_flag":   "appraise_flag is deprecated and has no effect",
	"appraise_algos":  "appraise_algos is not supported by intactd",
	"permit_directio": "permit_directio has no userspace meaning",
	"keyrings":        "keyrings= applies to KEY_CHECK, a kernel-only hook",
	"label":           "label= applies to CRITICAL_DATA, a kernel-only hook",
	"digest_type":     "digest_type=verity is not supported by intactd",
}

var supportedTemplates = map[string]bool{"ima-ng": true, "ima-sig": true}

// Parse parses policy text. source names it in errors (a file name).
// The first error is returned as a [*SyntaxError].
func Parse(source string, text []byte) (*Policy, error) {
	p := &Policy{Source: source}
	for i, line := range strings.Split(string(text), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		toks := tokenize(line)
		if len(toks) == 0 {
			continue
		}
		r, err := parseRule(toks, i+1)
		if err != nil {
			err.Source = source
			return nil, err
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

type token struct {
	text string
	col  int // 1-based byte column
}

func tokenize(line string) []token {
	var toks []token
	start := -1
	for i := 0; i <= len(line); i++ {
		sep := i == len(line) || line[i] == ' ' || line[i] == '\t' || line[i] == '\r'
		switch {
		case sep && start >= 0:
			toks = append(toks, token{line[start:i], start + 1})
			start = -1
		case !sep && start < 0:
			start = i
		}
	}
	return toks
}

// ruleParser carries the state of one rule.
type ruleParser struct {
	r    Rule
	line int
	seen map[string]bool
	tok  token
	// optCol remembers where options appeared, for action checks.
	optCol map[string]token
}

func (rp *ruleParser) fail(unsupported bool, format string, args ...any) *SyntaxError {
	e := &SyntaxError{Line: rp.line, Col: rp.tok.col, Token: rp.tok.text,
		Msg: fmt.Sprintf(format, args...), Err: ErrSyntax}
	if unsupported {
		e.Err = ErrUnsupported
	}
	return e
}

func parseRule(toks []token, line int) (Rule, *SyntaxError) {
	rp := &ruleParser{line: line, seen: map[string]bool{}, optCol: map[string]token{}}
	rp.r.Line = line
	for _, t := range toks {
		rp.tok = t
		if a, ok := lookupAction(t.text); ok {
			if rp.r.Action != 0 {
				return Rule{}, rp.fail(false, "second action in one rule")
			}
			rp.r.Action = a
			continue
		}
		if err := rp.condition(t.text); err != nil {
			return Rule{}, err
		}
	}
	if rp.r.Action == 0 {
		rp.tok = toks[0]
		return Rule{}, rp.fail(false, "rule has no action")
	}
	return rp.r, rp.validate()
}

func lookupAction(s string) (Action, bool) {
	for _, n := range actionNames {
		if n.name == s {
			return n.a, true
		}
	}
	return 0, false
}

// splitCond splits key=value, key<value and key>value.
func splitCond(s string) (key string, op byte, val string, ok bool) {
	i := strings.IndexAny(s, "=<>")
	if i < 0 {
		return s, 0, "", false
	}
	return s[:i], s[i], s[i+1:], true
}

func (rp *ruleParser) condition(s string) *SyntaxError {
	key, op, val, ok := splitCond(s)
	if why, bad := kernelOnly[key]; bad {
		return rp.fail(true, "%s", why)
	}
	if !ok {
		return rp.fail(false, "unknown token")
	}
	if id, isID := lookupID(key); isID {
		return rp.idCond(id, op, val)
	}
	if op != '=' {
		return rp.fail(false, "unknown token")
	}
	if rp.seen[key] {
		return rp.fail(false, "duplicate %s=", key)
	}
	rp.seen[key] = true
	if val == "" {
		return rp.fail(false, "empty value for %s=", key)
	}
	switch key {
	case "func":
		return rp.funcCond(val)
	case "mask":
		return rp.maskCond(val)
	case "fsmagic":
		return rp.magicCond(val)
	case "fsname":
		rp.r.FSName = val
	case "fsuuid":
		return rp.uuidCond(val)
	case "appraise_type", "pcr", "template":
		rp.optCol[key] = rp.tok
		return rp.option(key, val)
	default:
		return rp.fail(false, "unknown token")
	}
	return nil
}

func lookupID(key string) (IDField, bool) {
	for i, n := range idNames {
		if n == key {
			return IDField(i), true
		}
	}
	return 0, false
}

func (rp *ruleParser) funcCond(v string) *SyntaxError {
	f, known := funcTokens[v]
	if !known {
		return rp.fail(false, "unknown func %s", v)
	}
	if f == FuncNone {
		return rp.fail(true, "func=%s is a kernel-only hook that fanotify cannot see", v)
	}
	rp.r.Func = f
	return nil
}

func (rp *ruleParser) maskCond(v string) *SyntaxError {
	name := v
	if strings.HasPrefix(v, "^") {
		rp.r.MaskIn = true
		name = v[1:]
	}
	for _, m := range maskNames {
		if m.name == name {
			rp.r.Mask = m.m
			return nil
		}
	}
	return rp.fail(false, "unknown mask %s", v)
}

func (rp *ruleParser) magicCond(v string) *SyntaxError {
	h := strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
	n, err := strconv.ParseUint(h, 16, 64)
	if err != nil || h == "" || h[0] == '+' {
		return rp.fail(false, "fsmagic is not a hex number")
	}
	rp.r.FSMagic, rp.r.HasMagic = n, true
	return nil
}

func (rp *ruleParser) uuidCond(v string) *SyntaxError {
	u, ok := parseUUID(v)
	if !ok {
		return rp.fail(false, "fsuuid is not a canonical UUID")
	}
	rp.r.FSUUID, rp.r.HasUUID = u, true
	return nil
}

// parseUUID accepts the canonical 8-4-4-4-12 form only, like uuid_parse.
func parseUUID(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, false
	}
	return u, true
}

// idGroup: the kernel keeps uid/euid in one slot and gid/egid in another,
// so a rule may hold only one of each pair.
func idGroup(f IDField) string {
	switch f {
	case UID, EUID:
		return "uid"
	case GID, EGID:
		return "gid"
	}
	return f.String()
}

func (rp *ruleParser) idCond(f IDField, op byte, v string) *SyntaxError {
	g := "id:" + idGroup(f)
	if rp.seen[g] {
		return rp.fail(false, "duplicate %s condition (uid/euid and gid/egid exclude each other)", idGroup(f))
	}
	rp.seen[g] = true
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0xffffffff {
		return rp.fail(false, "%s is not a valid id", f)
	}
	c := IDCond{Field: f, ID: uint32(n)}
	switch op {
	case '<':
		c.Op = OpLt
	case '>':
		c.Op = OpGt
	}
	rp.r.IDs = append(rp.r.IDs, c)
	return nil
}

func (rp *ruleParser) option(key, v string) *SyntaxError {
	switch key {
	case "appraise_type":
		switch v {
		case "imasig":
			rp.r.SigRequired = true
		case "imasig|modsig", "sigv3":
			return rp.fail(true, "appraise_type=%s is not supported by intactd", v)
		default:
			return rp.fail(false, "unknown appraise_type %s", v)
		}
	case "pcr":
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || n > 23 {
			return rp.fail(false, "pcr is not a PCR index 0-23")
		}
		rp.r.PCR, rp.r.HasPCR = int(n), true
	case "template":
		if !supportedTemplates[v] {
			return rp.fail(true, "template %s is not supported (ima-ng, ima-sig)", v)
		}
		rp.r.Template = v
	}
	return nil
}

// validate applies the kernel's per-action checks.
func (rp *ruleParser) validate() *SyntaxError {
	if t, ok := rp.optCol["appraise_type"]; ok && rp.r.Action != Appraise {
		rp.tok = t
		return rp.fail(false, "appraise_type is only valid on appraise rules")
	}
	for _, k := range []string{"pcr", "template"} {
		if t, ok := rp.optCol[k]; ok && rp.r.Action != Measure {
			rp.tok = t
			return rp.fail(false, "%s is only valid on measure rules", k)
		}
	}
	return nil
}
