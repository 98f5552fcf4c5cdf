// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"fmt"
	"sort"
	"strings"
)

// String prints the rule in normalized form: the action, then the
// conditions and options in the kernel's printing order (ima_policy_show).
func (r *Rule) String() string {
	parts := []string{r.Action.String()}
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if r.Func != FuncNone {
		add("func=%s", r.Func)
	}
	if r.Mask != 0 {
		caret := ""
		if r.MaskIn {
			caret = "^"
		}
		add("mask=%s%s", caret, maskName(r.Mask))
	}
	if r.HasMagic {
		add("fsmagic=0x%x", r.FSMagic)
	}
	if r.FSName != "" {
		add("fsname=%s", r.FSName)
	}
	if r.HasPCR {
		add("pcr=%d", r.PCR)
	}
	if r.HasUUID {
		u := r.FSUUID
		add("fsuuid=%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	}
	ids := append([]IDCond(nil), r.IDs...)
	sort.SliceStable(ids, func(i, j int) bool { return ids[i].Field < ids[j].Field })
	for _, c := range ids {
		add("%s%s%d", c.Field, c.Op, c.ID)
	}
	if r.Template != "" {
		add("template=%s", r.Template)
	}
	if r.SigRequired {
		add("appraise_type=imasig")
	}
	return strings.Join(parts, " ")
}

func maskName(m uint32) string {
	for _, n := range maskNames {
		if n.m == m {
			return n.name
		}
	}
	return fmt.Sprintf("0x%x", m)
}
