// SPDX-License-Identifier: Apache-2.0

package rtpolicy_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/rtpolicy"
)

func TestMergeAndDiff(t *testing.T) {
	a := rtpolicy.Policy{Format: 1, Name: "base", Release: 3, Digests: map[string][]string{
		"/usr/bin/ls": {hexSum("ls 1")}, "/usr/bin/cat": {hexSum("cat")}, "/opt/app/run": {hexSum("run")}},
		Excludes: []string{"^/tmp/"}, IgnoreViolations: true}
	b := rtpolicy.Policy{Format: 1, Name: "update", Release: 7, Digests: map[string][]string{
		"/usr/bin/ls": {hexSum("ls 2")}, "/usr/bin/cat": {strings.ToUpper(hexSum("cat")[7:])}, "/usr/bin/new": {hexSum("new")}},
		Excludes: []string{"^/opt/app/", "^/tmp/"}}
	b.Digests["/usr/bin/cat"][0] = "SHA256:" + b.Digests["/usr/bin/cat"][0] // same digest, other spelling
	m, conflicts, err := rtpolicy.Merge([]rtpolicy.Policy{a, b}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "base" || m.Release != 8 || m.IgnoreViolations {
		t.Errorf("merged name %q release %d ignore_violations %v; want base, 8, false", m.Name, m.Release, m.IgnoreViolations)
	}
	want := map[string][]string{
		"/usr/bin/ls":  sortedStrings(hexSum("ls 1"), hexSum("ls 2")),
		"/usr/bin/cat": {hexSum("cat")},
		"/usr/bin/new": {hexSum("new")},
		"/opt/app/run": {hexSum("run")},
	}
	if !reflect.DeepEqual(m.Digests, want) {
		t.Errorf("merged digests %v\nwant %v", m.Digests, want)
	}
	if !reflect.DeepEqual(m.Excludes, []string{"^/opt/app/", "^/tmp/"}) {
		t.Errorf("merged excludes %v", m.Excludes)
	}
	kinds := map[string]string{}
	for _, c := range conflicts {
		kinds[c.Kind] += c.Path + ";"
		t.Logf("conflict: %s", c)
	}
	if kinds[rtpolicy.ConflictDigests] != "/usr/bin/ls;" || kinds[rtpolicy.ConflictExcluded] != "/opt/app/run;" || kinds[rtpolicy.ConflictViolations] == "" {
		t.Errorf("conflicts %v", kinds)
	}

	d, err := rtpolicy.Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.AddedPaths) != 1 || d.AddedPaths["/usr/bin/new"] == nil || len(d.RemovedPaths) != 1 || d.RemovedPaths["/opt/app/run"] == nil {
		t.Errorf("paths: +%v -%v", d.AddedPaths, d.RemovedPaths)
	}
	if len(d.Changed) != 1 || d.Changed[0].Path != "/usr/bin/ls" || d.Changed[0].Added[0] != hexSum("ls 2") || d.Changed[0].Removed[0] != hexSum("ls 1") {
		t.Errorf("changed %+v (cat differs only in spelling and must not show)", d.Changed)
	}
	if !reflect.DeepEqual(d.AddedExcludes, []string{"^/opt/app/"}) || len(d.Flags) != 1 {
		t.Errorf("excludes +%v flags %v", d.AddedExcludes, d.Flags)
	}
	text := d.String()
	for _, line := range []string{"+ /usr/bin/new " + hexSum("new"), "- /opt/app/run " + hexSum("run"),
		"~ /usr/bin/ls - " + hexSum("ls 1"), "~ /usr/bin/ls + " + hexSum("ls 2"), "+ exclude ^/opt/app/", "~ ignore_violations: true -> false"} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("diff text lacks %q:\n%s", line, text)
		}
	}
	js, _ := json.Marshal(d)
	var back rtpolicy.Delta
	if err := json.Unmarshal(js, &back); err != nil || !reflect.DeepEqual(&back, d) {
		t.Errorf("delta JSON round trip: %v", err)
	}
	same, _ := rtpolicy.Diff(a, a)
	if !same.Empty() || same.String() != "" {
		t.Errorf("diff of a policy with itself: %+v", same)
	}
	// Windows show in the diff.
	w := rtpolicy.AddWindow(a, b, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC), "rollout")
	dw, _ := rtpolicy.Diff(a, w)
	if len(dw.Windows) != 1 || !strings.HasPrefix(dw.Windows[0], "+ window until 2030-01-01T00:00:00Z: 2 digests (rollout)") {
		t.Errorf("window diff %v", dw.Windows)
	}
}

func sortedStrings(s ...string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Policies are untrusted input to merge, diff and signing too.
func FuzzCanonicalMergeDiff(f *testing.F) {
	f.Add([]byte(`{"intact_runtime_policy":1,"digests":{"/a":["sha256:` + hexSum("x")[7:] + `","SHA256:` + hexSum("x")[7:] + `"]},"excludes":["^/tmp","^/tmp"],"windows":[{"until":"2030-01-01T00:00:00Z","digests":{"/b":["sha1:0011223344556677889900112233445566778899"]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := rtpolicy.Parse(b)
		if err != nil {
			return
		}
		p := c.Document()
		cb, err := rtpolicy.CanonicalBytes(p)
		if err != nil {
			return // e.g. a window end that has no JSON form in UTC
		}
		c2, err := rtpolicy.Parse(cb)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		if d, err := rtpolicy.Diff(p, c2.Document()); err != nil || !d.Empty() {
			t.Fatalf("policy differs from its canonical form: %v %+v", err, d)
		}
		m, _, err := rtpolicy.Merge([]rtpolicy.Policy{p, c2.Document()}, nil)
		if err != nil {
			t.Fatalf("merging a policy with itself: %v", err)
		}
		if d, err := rtpolicy.Diff(p, m); err != nil || len(d.AddedPaths)+len(d.RemovedPaths)+len(d.Changed) != 0 {
			t.Fatalf("merge with itself changed digests: %v %+v", err, d)
		}
	})
}
