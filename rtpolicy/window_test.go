// SPDX-License-Identifier: Apache-2.0

package rtpolicy_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/sig"
)

func reason(f *rtpolicy.Finding) string {
	if f == nil {
		return ""
	}
	return f.Reason
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	old := rtpolicy.Policy{Format: 1, Digests: map[string][]string{"/usr/bin/tool": {hexSum("tool v1")}}}
	upgraded := rtpolicy.Policy{Format: 1, Digests: map[string][]string{
		"/usr/bin/tool": {hexSum("tool v2")}, "/usr/lib/libnew.so": {hexSum("libnew")}}}

	// Before the rollout: the old policy, plus the new digests for an hour.
	pre := rtpolicy.AddWindow(old, upgraded, t0.Add(time.Hour), t0, "upgrade tool")
	// After it: the new policy, plus the old digests for an hour.
	post := rtpolicy.AddWindow(upgraded, old, t0.Add(time.Hour), t0, "")
	for _, tc := range []struct {
		name    string
		p       rtpolicy.Policy
		content string
		path    string
		at      time.Time
		want    string
	}{
		{"pre: old digest", pre, "tool v1", "/usr/bin/tool", t0, ""},
		{"pre: new digest in window", pre, "tool v2", "/usr/bin/tool", t0.Add(59 * time.Minute), ""},
		{"pre: new file in window", pre, "libnew", "/usr/lib/libnew.so", t0, ""},
		{"pre: new digest at the end", pre, "tool v2", "/usr/bin/tool", t0.Add(time.Hour), rtpolicy.DigestMismatch},
		{"pre: new file after the end", pre, "libnew", "/usr/lib/libnew.so", t0.Add(2 * time.Hour), rtpolicy.NotInPolicy},
		{"pre: no clock, no window", pre, "tool v2", "/usr/bin/tool", time.Time{}, rtpolicy.DigestMismatch},
		{"pre: other digest in window", pre, "tool v3", "/usr/bin/tool", t0, rtpolicy.DigestMismatch},
		{"post: new digest", post, "tool v2", "/usr/bin/tool", t0.Add(3 * time.Hour), ""},
		{"post: old digest in window", post, "tool v1", "/usr/bin/tool", t0, ""},
		{"post: old digest after", post, "tool v1", "/usr/bin/tool", t0.Add(time.Hour + time.Second), rtpolicy.DigestMismatch},
	} {
		b, err := json.Marshal(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := rtpolicy.Parse(b) // the window survives the JSON round trip
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := reason(c.EvaluateAt(tc.at, 1, rec(t, tc.path, tc.content, nil))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := len(pre.Windows); n != 1 || len(pre.Windows[0].Digests) != 2 {
		t.Errorf("pre windows = %+v", pre.Windows)
	}
	// Expired windows are dropped when another is added.
	later := rtpolicy.AddWindow(pre, rtpolicy.Policy{Format: 1, Digests: map[string][]string{"/x": {hexSum("x")}}},
		t0.Add(5*time.Hour), t0.Add(2*time.Hour), "")
	if len(later.Windows) != 1 || later.Windows[0].Until != t0.Add(5*time.Hour) {
		t.Errorf("after adding a window past the first's end: %+v", later.Windows)
	}
	// A window without an end is refused.
	bad := `{"intact_runtime_policy":1,"digests":{},"windows":[{"digests":{"/a":["` + hexSum("a") + `"]}}]}`
	if _, err := rtpolicy.Parse([]byte(bad)); !errors.Is(err, rtpolicy.ErrFormat) {
		t.Errorf("window without until: %v", err)
	}
}

func TestSignatureFallbackAndSM3(t *testing.T) {
	key, _ := sig.GenerateKey("ec-p256")
	id, _ := sig.KeyID(key.Public())
	d := sha256.Sum256([]byte("signed"))
	s, err := sig.SignDigest(key, id, digest.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	p := rtpolicy.Policy{Format: 1, Digests: map[string][]string{"/opt/signed": {hexSum("signed")}}}
	strict, _ := rtpolicy.Compile(p)
	p.SignatureFallback = true
	fallback, _ := rtpolicy.Compile(p)
	r := rec(t, "/opt/signed", "signed", s.Marshal()) // signed by a key the policy does not have
	if got := reason(strict.Evaluate(0, r)); got != rtpolicy.UnknownKey {
		t.Errorf("strict: %q, want %q", got, rtpolicy.UnknownKey)
	}
	if got := reason(fallback.Evaluate(0, r)); got != "" {
		t.Errorf("fallback with the digest listed: %q, want pass", got)
	}
	if got := reason(fallback.Evaluate(0, rec(t, "/opt/other", "signed", s.Marshal()))); got != rtpolicy.NotInPolicy {
		t.Errorf("fallback, path unlisted: %q, want %q", got, rtpolicy.NotInPolicy)
	}

	// Records that spell SM3 "sm3_256" (Keylime's lists) match "sm3:" digests.
	raw := sha256.Sum256([]byte("x")) // any 32 bytes
	sm3 := rtpolicy.Policy{Format: 1, Digests: map[string][]string{"/s": {"sm3:" + hexOf(raw[:])}}}
	c, err := rtpolicy.Compile(sm3)
	if err != nil {
		t.Fatal(err)
	}
	l, err := mlog.ParseASCII([]byte("10 "+hexOf(make([]byte, 20))[:39]+"1 ima-ng sm3_256:"+hexOf(raw[:])+" /s\n"), mlog.Options{Bank: digest.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Evaluate(0, &l.UnverifiedRecords()[0]); f != nil {
		t.Errorf("sm3_256 record: %v", f)
	}
}

func hexOf(b []byte) string {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&15])
	}
	return string(out)
}
