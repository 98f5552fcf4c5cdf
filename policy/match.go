// SPDX-License-Identifier: Apache-2.0

package policy

// Subject is everything a rule can test about one access: the hook, the
// requested access mask, the file system, the task's credentials and the
// file's owner. Callers fill it from the event; Decide does no I/O.
type Subject struct {
	Func Func
	Mask uint32 // MayExec, MayRead, ...

	FSMagic uint64
	FSName  string
	FSUUID  [16]byte

	UID, EUID, SUID uint32
	GID, EGID, SGID uint32
	// CapSetuid and CapSetgid: the task holds CAP_SETUID / CAP_SETGID,
	// so euid (egid) rules also match its real and saved ids, as in the
	// kernel.
	CapSetuid, CapSetgid bool

	FOwner, FGroup uint32
}

// Decision is what the policy asks for one access. Rule fields hold the
// index in Policy.Rules of the rule that decided each class, -1 if none.
type Decision struct {
	Measure     bool
	Appraise    bool
	Audit       bool
	SigRequired bool // appraise_type=imasig on the deciding appraise rule
	// PCR is pcr= of the measure rule when HasPCR; otherwise the caller
	// picks its default (the kernel's is DefaultPCR).
	PCR      int
	HasPCR   bool
	Template string // template= of the measure rule, "" for the default

	MeasureRule, AppraiseRule, AuditRule int
}

// Decide evaluates the policy for s: the first rule that matches decides
// each action class (measure/dont_measure, appraise/dont_appraise, audit),
// as in the kernel's ima_match_policy.
func (p *Policy) Decide(s Subject) Decision {
	d := Decision{MeasureRule: -1, AppraiseRule: -1, AuditRule: -1}
	open := map[Action]bool{Measure: true, Appraise: true, Audit: true}
	for i := range p.Rules {
		r := &p.Rules[i]
		c := r.Action.class()
		if !open[c] || !r.Matches(s) {
			continue
		}
		open[c] = false
		switch c {
		case Measure:
			d.MeasureRule = i
			if r.Action == Measure {
				d.Measure, d.Template = true, r.Template
				d.PCR, d.HasPCR = r.PCR, r.HasPCR
			}
		case Appraise:
			d.AppraiseRule = i
			if r.Action == Appraise {
				d.Appraise, d.SigRequired = true, r.SigRequired
			}
		case Audit:
			d.AuditRule, d.Audit = i, true
		}
		if !open[Measure] && !open[Appraise] && !open[Audit] {
			break
		}
	}
	return d
}

// Matches reports whether every condition of r holds for s.
func (r *Rule) Matches(s Subject) bool {
	if r.Func != FuncNone && r.Func != s.Func {
		return false
	}
	if r.Mask != 0 {
		if r.MaskIn && r.Mask&s.Mask == 0 {
			return false
		}
		if !r.MaskIn && r.Mask != s.Mask {
			return false
		}
	}
	if r.HasMagic && r.FSMagic != s.FSMagic {
		return false
	}
	if r.FSName != "" && r.FSName != s.FSName {
		return false
	}
	if r.HasUUID && r.FSUUID != s.FSUUID {
		return false
	}
	for _, c := range r.IDs {
		if !c.matches(s) {
			return false
		}
	}
	return true
}

func (c IDCond) matches(s Subject) bool {
	switch c.Field {
	case UID:
		return c.Op.match(s.UID, c.ID)
	case GID:
		return c.Op.match(s.GID, c.ID)
	case EUID:
		if s.CapSetuid {
			return c.Op.match(s.EUID, c.ID) || c.Op.match(s.SUID, c.ID) || c.Op.match(s.UID, c.ID)
		}
		return c.Op.match(s.EUID, c.ID)
	case EGID:
		if s.CapSetgid {
			return c.Op.match(s.EGID, c.ID) || c.Op.match(s.SGID, c.ID) || c.Op.match(s.GID, c.ID)
		}
		return c.Op.match(s.EGID, c.ID)
	case FOwner:
		return c.Op.match(s.FOwner, c.ID)
	case FGroup:
		return c.Op.match(s.FGroup, c.ID)
	}
	return false
}

// SubjectDependent reports whether any rule tests the task's credentials
// (uid, euid, gid, egid). When none does, a decision depends only on the
// file and the hook, and an allow may be cached for every task.
func (p *Policy) SubjectDependent() bool {
	for _, r := range p.Rules {
		for _, c := range r.IDs {
			switch c.Field {
			case UID, EUID, GID, EGID:
				return true
			}
		}
	}
	return false
}

// PCRs returns the distinct pcr= values of the measure rules, in order of
// first appearance.
func (p *Policy) PCRs() []int {
	var pcrs []int
	seen := map[int]bool{}
	for _, r := range p.Rules {
		if r.HasPCR && !seen[r.PCR] {
			seen[r.PCR] = true
			pcrs = append(pcrs, r.PCR)
		}
	}
	return pcrs
}

// Needs reports which action classes the policy can ever ask for: a class
// without any rule of its "do" action is never needed.
func (p *Policy) Needs() (measure, appraise, audit bool) {
	for _, r := range p.Rules {
		switch r.Action {
		case Measure:
			measure = true
		case Appraise:
			appraise = true
		case Audit:
			audit = true
		}
	}
	return
}
