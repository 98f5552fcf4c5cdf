// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"bufio"
	"fmt"
	"sort"
	"strings"
)

// Rules say which parts of a tree a manifest covers and which attributes
// it records below each path. The syntax, one rule a line, '#' comments:
//
//	!/var/log               leave out /var/log and everything below it
//	/var/lib -content -size below /var/lib: all but content and size
//	/etc/ssh content mode   below /etc/ssh: exactly content and mode
//
// A path is absolute as the roots name it (names escaped as in the
// format: %20 for a space). A list of bare attribute names sets the
// attributes; +NAME and -NAME change those of the enclosing rule (all
// attributes at the top). The deepest rule that covers a path applies; an
// excluded path is not walked, so nothing below it is recorded. Attribute
// names: content, mode, owner, group, size, target, device, xattrs, all.
type Rules struct {
	rules []rule // sorted by path, ComparePaths order
}

type rule struct {
	path    string
	exclude bool
	set     bool // the list sets the attributes; else it changes them
	add     Attrs
	del     Attrs
	text    string // canonical form
}

// ParseRules parses rules text; name is used in errors.
func ParseRules(name, text string) (*Rules, error) {
	rs := &Rules{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, MaxLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		r, err := parseRule(fields)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		if seen[r.path] {
			return nil, fmt.Errorf("%s:%d: a second rule for %s", name, n, Escape(r.path))
		}
		seen[r.path] = true
		rs.rules = append(rs.rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	sort.Slice(rs.rules, func(i, j int) bool { return ComparePaths(rs.rules[i].path, rs.rules[j].path) < 0 })
	return rs, nil
}

func parseRule(fields []string) (rule, error) {
	var r rule
	p := fields[0]
	if strings.HasPrefix(p, "!") {
		r.exclude = true
		p = p[1:]
		if len(fields) > 1 {
			return r, fmt.Errorf("an exclusion (!PATH) takes no attributes")
		}
	} else if len(fields) == 1 {
		return r, fmt.Errorf("rule %q: want !PATH or PATH ATTRIBUTES", p)
	}
	path, err := Unescape(p)
	if err != nil {
		return r, fmt.Errorf("path %q: %v", p, err)
	}
	if !strings.HasPrefix(path, "/") || (path != "/" && !validPath(path)) {
		return r, fmt.Errorf("path %q is not a clean absolute path", p)
	}
	r.path = path
	canon := []string{p}
	if r.exclude {
		canon[0] = "!" + Escape(path)
	} else {
		canon[0] = Escape(path)
	}
	for i, tok := range fields[1:] {
		sign := tok[0]
		name := tok
		if sign == '+' || sign == '-' {
			name = tok[1:]
		}
		a, ok := ParseAttr(name)
		if !ok {
			return r, fmt.Errorf("unknown attribute %q (content, mode, owner, group, size, target, device, xattrs, all)", name)
		}
		switch {
		case sign == '+':
			if r.set {
				return r, fmt.Errorf("%q: +NAME after a plain list", tok)
			}
			r.add |= a
		case sign == '-':
			if r.set {
				return r, fmt.Errorf("%q: -NAME after a plain list", tok)
			}
			r.del |= a
		default:
			if i > 0 && !r.set {
				return r, fmt.Errorf("%q: a plain name after +NAME/-NAME", tok)
			}
			r.set = true
			r.add |= a
		}
		canon = append(canon, tok)
	}
	r.text = strings.Join(canon, " ")
	return r, nil
}

// Lines returns the rules in canonical form, one string each, as a
// manifest records them.
func (rs *Rules) Lines() []string {
	if rs == nil {
		return nil
	}
	out := make([]string, len(rs.rules))
	for i, r := range rs.rules {
		out[i] = r.text
	}
	return out
}

// RulesFromLines parses the rule lines a manifest recorded.
func RulesFromLines(lines []string) (*Rules, error) {
	return ParseRules("manifest rules", strings.Join(lines, "\n"))
}

// For returns whether path (absolute) is excluded, and the attributes
// recorded for it.
func (rs *Rules) For(path string) (excluded bool, attrs Attrs) {
	attrs = AttrAll
	if rs == nil {
		return false, attrs
	}
	for _, r := range rs.rules { // shallow rules sort before deeper ones
		if !isBelow(path, r.path) {
			continue
		}
		if r.exclude {
			return true, 0
		}
		if r.set {
			attrs = r.add
		} else {
			attrs = (attrs | r.add) &^ r.del
		}
	}
	return false, attrs
}

// below reports whether any rule applies strictly below dir (so that the
// entries of dir cannot simply inherit its attributes).
func (rs *Rules) below(dir string) bool {
	if rs == nil {
		return false
	}
	for _, r := range rs.rules {
		if r.path != dir && isBelow(r.path, dir) {
			return true
		}
	}
	return false
}
