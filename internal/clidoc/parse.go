// SPDX-License-Identifier: Apache-2.0

package clidoc

import (
	"regexp"
	"sort"
	"strings"
)

// These read flag names back out of the three places a user meets them,
// so that a test can check that they agree with each other and not only
// with the renderer.

var helpFlagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)`)

// HelpFlags returns the flag names (dashed as in the man page: -r,
// --key) that flag.PrintDefaults output lists, sorted.
func HelpFlags(help string) []string {
	var out []string
	for _, l := range strings.Split(help, "\n") {
		if m := helpFlagLine.FindStringSubmatch(l); m != nil {
			out = append(out, Flag{Name: m[1]}.Dashed())
		}
	}
	sort.Strings(out)
	return out
}

// ManFlags returns, for each .SS subsection of a man page (and "" for the
// flags before the first), the flag names its .TP entries list, sorted.
func ManFlags(man string) map[string][]string {
	out := map[string][]string{}
	sect := ""
	lines := strings.Split(man, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, ".SS "):
			sect = unroff(strings.Trim(strings.TrimPrefix(l, ".SS "), `"`))
			out[sect] = out[sect][:0:0]
		case l == ".TP" && i+1 < len(lines):
			n := lines[i+1]
			var name string
			switch {
			case strings.HasPrefix(n, `.BI "`):
				name = strings.TrimSpace(strings.SplitN(n[5:], `"`, 2)[0])
			case strings.HasPrefix(n, `.B "`):
				name = strings.SplitN(n[4:], `"`, 2)[0]
			}
			if name != "" {
				out[sect] = append(out[sect], unroff(name))
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func unroff(s string) string {
	s = strings.ReplaceAll(s, `\-`, "-")
	s = strings.ReplaceAll(s, `\(dq`, `"`)
	return strings.ReplaceAll(s, `\e`, `\`)
}

var mdFlagRow = regexp.MustCompile("^\\| `(-{1,2}[A-Za-z0-9][A-Za-z0-9_.-]*)")
var mdFlagsOf = regexp.MustCompile("^Flags of (?:every command of )?`([^`]+)`:")

// MarkdownFlags returns, for each "Flags of `CMD`:" table of a page's
// generated regions, the flag names it lists, sorted.
func MarkdownFlags(page string) map[string][]string {
	out := map[string][]string{}
	cur, in := "", false
	for _, l := range strings.Split(page, "\n") {
		if _, ok := regionKey(l, beginMark); ok {
			in = true
			continue
		}
		if _, ok := regionKey(l, endMark); ok {
			in, cur = false, ""
			continue
		}
		if !in {
			continue
		}
		if m := mdFlagsOf.FindStringSubmatch(l); m != nil {
			cur = m[1]
			out[cur] = out[cur][:0:0]
			continue
		}
		if m := mdFlagRow.FindStringSubmatch(l); m != nil && cur != "" {
			out[cur] = append(out[cur], m[1])
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}
