// SPDX-License-Identifier: Apache-2.0

package rtpolicy

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/intactsec/intact/digest"
)

// Window is an update window: until Until, the verifier also accepts
// these digests (per path, and per ima-buf name), so that a package
// upgrade rolled out while the policy changes raises no false alarm.
// After Until the window is ignored: the expiry is judged with the
// verifier's clock (Compiled.EvaluateAt), so a window needs no restart
// and no clean-up to end.
//
// A window lives in the policy document, so it is signed, stored and
// replaced with it: putting a new policy version with a window into the
// verifier applies it from each agent's next attestation.
type Window struct {
	Until   time.Time           `json:"until"`
	Note    string              `json:"note,omitempty"`
	Digests map[string][]string `json:"digests,omitempty"`
	Buffers map[string][]string `json:"buffers,omitempty"`
}

type compiledWindow struct {
	until   time.Time
	digests map[string]map[string]struct{}
	buffers map[string]map[string]struct{}
}

func compileWindows(ws []Window) ([]compiledWindow, error) {
	out := make([]compiledWindow, 0, len(ws))
	for i, w := range ws {
		if w.Until.IsZero() {
			return nil, ferr("windows[%d]: no until time", i)
		}
		cw := compiledWindow{until: w.Until}
		var err error
		if cw.digests, err = compileDigests("windows["+strconv.Itoa(i)+"].digests", w.Digests); err != nil {
			return nil, err
		}
		if cw.buffers, err = compileDigests("windows["+strconv.Itoa(i)+"].buffers", w.Buffers); err != nil {
			return nil, err
		}
		out = append(out, cw)
	}
	return out, nil
}

// windowAccepts reports whether a window open at now accepts digest for
// name. A zero now opens no window.
func (c *Compiled) windowAccepts(now time.Time, buf bool, name, digest string) bool {
	if now.IsZero() {
		return false
	}
	for i := range c.windows {
		w := &c.windows[i]
		if !now.Before(w.until) {
			continue
		}
		set := w.digests
		if buf {
			set = w.buffers
		}
		if _, ok := set[name][digest]; ok {
			return true
		}
	}
	return false
}

// OpenWindows returns the windows still open at now, soonest end first.
func (c *Compiled) OpenWindows(now time.Time) []Window {
	var out []Window
	for _, w := range c.doc.Windows {
		if now.Before(w.Until) {
			out = append(out, w)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Until.Before(out[j].Until) })
	return out
}

// AddWindow returns base with a window, open until until, accepting every
// digest of other that base does not accept (for paths and buffers).
// Both upgrade orders work: base = the new policy and other = the old one
// keeps not-yet-upgraded machines trusted; base = the old policy and other
// = the new one lets upgraded machines pass before the new policy is
// published. Windows of base that ended before now are dropped.
func AddWindow(base, other Policy, until, now time.Time, note string) Policy {
	out := clonePolicy(base)
	var kept []Window
	for _, w := range out.Windows {
		if now.Before(w.Until) {
			kept = append(kept, w)
		}
	}
	out.Windows = kept
	w := Window{Until: until.UTC(), Note: note,
		Digests: missing(base.Digests, other.Digests), Buffers: missing(base.Buffers, other.Buffers)}
	if len(w.Digests) > 0 || len(w.Buffers) > 0 {
		out.Windows = append(out.Windows, w)
	}
	return out
}

// missing returns the digests of other not in base.
func missing(base, other map[string][]string) map[string][]string {
	out := map[string][]string{}
	for path, list := range other {
		have := map[string]bool{}
		for _, d := range base[path] {
			if n, err := NormalizeDigest(d); err == nil {
				have[n] = true
			}
		}
		for _, d := range list {
			n, err := NormalizeDigest(d)
			if err != nil || have[n] {
				continue
			}
			have[n] = true
			out[path] = append(out[path], n)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// recordAlgo maps the algorithm name of a measurement record to the name
// policies use: the kernel's names, and the spellings SM3 has had
// ("sm3-256" in older kernels, "sm3_256" in Keylime's lists).
func recordAlgo(name string) string {
	switch strings.ToLower(name) {
	case "sm3_256", "sm3-256":
		return digest.SM3.String()
	}
	if a, err := digest.ParseAlgo(name); err == nil {
		return a.String()
	}
	return name
}

func cloneDigests(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func clonePolicy(p Policy) Policy {
	out := p
	out.Digests = cloneDigests(p.Digests)
	out.Buffers = cloneDigests(p.Buffers)
	out.Excludes = slices.Clone(p.Excludes)
	out.Keys = slices.Clone(p.Keys)
	out.LogPCRs = maps.Clone(p.LogPCRs)
	out.Windows = nil
	for _, w := range p.Windows {
		w.Digests, w.Buffers = cloneDigests(w.Digests), cloneDigests(w.Buffers)
		out.Windows = append(out.Windows, w)
	}
	return out
}
