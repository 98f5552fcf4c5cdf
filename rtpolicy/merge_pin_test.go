// SPDX-License-Identifier: Apache-2.0

package rtpolicy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/rtpolicy"
)

// TestMergePinned pins Merge's whole result, byte for byte: the merged
// policy's canonical JSON and every conflict, in order, over three inputs
// that disagree in each way Merge reports (digests, an exclude over a
// listed path, the flags, the log PCRs) and carry buffers, keys and
// windows.
func TestMergePinned(t *testing.T) {
	d := func(c byte) string { return "sha1:" + strings.Repeat(string(c), 40) }
	// three P-256 public keys (PKIX, base64)
	k1 := "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELub3q1k7cs2b0rcUl7n2DN2q5sewDl5iYysjnWWw7Qml3PEX897igK/iBljdvTqLatrceIaHSQLYjJj8vgBoGA=="
	k2 := "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeNXBx/jY4SFzZEVRW5MXtq6YXRYUoQsWmEKMVvBZj2kdWsSK7/31PRPXtSjKTlH6hMJoMpIEblFnFRdc5Krj+g=="
	k3 := "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7oCRF71ytrkdCXXWPWs3WbOmCc1oOGyQs+D9CqjFy+QQRViTkXyUrViGaKWJUtxLsnMA/zTdr5S22PBBH6fWeQ=="
	until := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	a := rtpolicy.Policy{Format: 1, Name: "base", Release: 4,
		Digests:  map[string][]string{"/bin/a": {d('1')}, "/bin/b": {d('2'), d('2')}, "/opt/x/run": {d('3')}},
		Buffers:  map[string][]string{"kernel_version": {d('4')}},
		Excludes: []string{"^/tmp/"}, Keys: []string{k2, k1},
		IgnoreViolations: true, SignatureFallback: true,
		LogPCRs: map[string]int{"ima": 11}, BootPolicy: "boot-a"}
	b := rtpolicy.Policy{Format: 1, Name: "update", Release: 9,
		Digests:  map[string][]string{"/bin/a": {strings.ToUpper(d('5'))}, "/bin/b": {d('2')}, "/bin/c": {d('6')}},
		Buffers:  map[string][]string{"kernel_version": {d('7')}, "other": {d('8')}},
		Excludes: []string{"^/opt/x/", "^/tmp/"}, Keys: []string{k3, k1},
		Windows: []rtpolicy.Window{{Until: until, Note: "rollout", Digests: map[string][]string{"/bin/a": {d('9')}}}}}
	c := rtpolicy.Policy{Format: 1, Name: "third", Release: 2,
		Digests:  map[string][]string{"/bin/a": {d('1')}, "/bin/c": {d('a')}},
		Excludes: []string{"^/bin/c$"}, IgnoreViolations: true,
		LogPCRs: map[string]int{"ima": 12, "intact": 14}}
	m, conflicts, err := rtpolicy.Merge([]rtpolicy.Policy{a, b, c}, []string{"a.json", "b.json"})
	if err != nil {
		t.Fatal(err)
	}
	js, err := rtpolicy.CanonicalBytes(m)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	got.Write(js)
	got.WriteString("\n")
	for _, c := range conflicts {
		got.WriteString(c.String() + "\n")
	}
	want := `{"intact_runtime_policy":1,"name":"base","release":10,"digests":{"/bin/a":["sha1:1111111111111111111111111111111111111111","sha1:5555555555555555555555555555555555555555"],"/bin/b":["sha1:2222222222222222222222222222222222222222"],"/bin/c":["sha1:6666666666666666666666666666666666666666","sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],"/opt/x/run":["sha1:3333333333333333333333333333333333333333"]},"excludes":["^/bin/c$","^/opt/x/","^/tmp/"],"keys":["MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7oCRF71ytrkdCXXWPWs3WbOmCc1oOGyQs+D9CqjFy+QQRViTkXyUrViGaKWJUtxLsnMA/zTdr5S22PBBH6fWeQ==","MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELub3q1k7cs2b0rcUl7n2DN2q5sewDl5iYysjnWWw7Qml3PEX897igK/iBljdvTqLatrceIaHSQLYjJj8vgBoGA==","MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeNXBx/jY4SFzZEVRW5MXtq6YXRYUoQsWmEKMVvBZj2kdWsSK7/31PRPXtSjKTlH6hMJoMpIEblFnFRdc5Krj+g=="],"buffers":{"kernel_version":["sha1:4444444444444444444444444444444444444444","sha1:7777777777777777777777777777777777777777"],"other":["sha1:8888888888888888888888888888888888888888"]},"windows":[{"until":"2031-02-03T04:05:06Z","note":"rollout","digests":{"/bin/a":["sha1:9999999999999999999999999999999999999999"]}}],"log_pcrs":{"ima":11},"boot_policy":"boot-a"}
/bin/a: different-digests: a.json lists [sha1:1111111111111111111111111111111111111111], b.json lists [sha1:5555555555555555555555555555555555555555] (all are accepted)
/bin/a: different-digests: a.json lists [sha1:1111111111111111111111111111111111111111 sha1:5555555555555555555555555555555555555555], policy 3 lists [sha1:1111111111111111111111111111111111111111] (all are accepted)
/bin/c: different-digests: b.json lists [sha1:6666666666666666666666666666666666666666], policy 3 lists [sha1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa] (all are accepted)
ignore-violations: a.json and b.json disagree (violations fail (ignore_violations false))
signature-fallback: a.json and b.json disagree (a signature that does not verify fails (signature_fallback false))
ignore-violations: a.json and policy 3 disagree (violations fail (ignore_violations false))
log-pcr: a.json wants the ima list on pcr 11, b.json on pcr 10 (pcr 11 (the first input's))
log-pcr: a.json wants the ima list on pcr 11, policy 3 on pcr 12 (pcr 11 (the first input's))
log-pcr: a.json wants the intact list on pcr 13, policy 3 on pcr 14 (pcr 13 (the first input's))
/opt/x/run: excluded: listed by a.json, excluded by b.json ("^/opt/x/") (excluded: any digest passes)
/bin/c: excluded: listed by b.json, excluded by policy 3 ("^/bin/c$") (excluded: any digest passes)
`
	if got.String() != want {
		t.Errorf("merge:\n%s\nwant:\n%s", got.String(), want)
	}
}
