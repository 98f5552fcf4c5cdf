// SPDX-License-Identifier: Apache-2.0

package rtpolicy_test

import (
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/sig"
)

func rec(t *testing.T, path string, content string, sigBytes []byte) *mlog.Record {
	t.Helper()
	d := sha256.Sum256([]byte(content))
	tmpl := mlog.TemplateIMANG
	if sigBytes != nil {
		tmpl = mlog.TemplateIMASig
	}
	r, err := mlog.NewRecord(10, tmpl, mlog.FileMeasurement{Algo: digest.SHA256, Digest: d[:], Path: path, Sig: sigBytes}, digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	return &r
}

func hexSum(s string) string {
	d := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(d[:])
}

func TestEvaluate(t *testing.T) {
	key, err := sig.GenerateKey("ec-p256")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sig.CreateCertificate(key, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := sig.GenerateKey("ec-p256")
	signWith := func(signer crypto.Signer, content string) []byte {
		id, err := sig.KeyID(signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256([]byte(content))
		s, err := sig.SignDigest(signer, id, digest.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return s.Marshal()
	}
	doc := map[string]any{
		"intact_runtime_policy": 1,
		"name":                  "t",
		"digests": map[string][]string{
			"/usr/bin/ok": {hexSum("ok"), "SHA1:" + "00112233445566778899aabbccddeeff00112233"},
		},
		"excludes": []string{"^/tmp/"},
		"keys":     []string{base64.StdEncoding.EncodeToString(cert)},
	}
	b, _ := json.Marshal(doc)
	p, err := rtpolicy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	goodSig := signWith(key, "signed")
	for _, tc := range []struct {
		name string
		r    *mlog.Record
		want string
	}{
		{"listed", rec(t, "/usr/bin/ok", "ok", nil), ""},
		{"excluded", rec(t, "/tmp/x", "anything", nil), ""},
		{"boot aggregate", rec(t, "boot_aggregate", "x", nil), ""},
		{"unlisted", rec(t, "/usr/bin/evil", "evil", nil), rtpolicy.NotInPolicy},
		{"changed", rec(t, "/usr/bin/ok", "changed", nil), rtpolicy.DigestMismatch},
		{"signed", rec(t, "/opt/signed", "signed", goodSig), ""},
		{"signature over other content", rec(t, "/opt/signed", "other", goodSig), rtpolicy.BadSignature},
		{"unknown key", rec(t, "/opt/signed", "signed", signWith(other, "signed")), rtpolicy.UnknownKey},
	} {
		f := p.Evaluate(3, tc.r)
		got := ""
		if f != nil {
			got = f.Reason
		}
		if got != tc.want {
			t.Errorf("%s: Evaluate = %v, want %q", tc.name, f, tc.want)
		}
		if f != nil && f.Index != 3 {
			t.Errorf("%s: index %d", tc.name, f.Index)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, doc := range []string{
		`{}`,
		`{"intact_runtime_policy":2,"digests":{}}`,
		`{"intact_runtime_policy":1,"digests":{"/a":["sha256:00"]}}`,
		`{"intact_runtime_policy":1,"digests":{"/a":["md9:00"]}}`,
		`{"intact_runtime_policy":1,"digests":{},"excludes":["("]}`,
		`{"intact_runtime_policy":1,"digests":{},"keys":["AAAA"]}`,
		`{"intact_runtime_policy":1,"digests":{},"unknown":1}`,
		`{"intact_runtime_policy":1,"digests":{}} {}`,
	} {
		if _, err := rtpolicy.Parse([]byte(doc)); !errors.Is(err, rtpolicy.ErrFormat) {
			t.Errorf("Parse(%s) = %v, want ErrFormat", doc, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"intact_runtime_policy":1,"digests":{"/a":["sha256:` + hexSum("x")[7:] + `"]},"excludes":["^/tmp"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := rtpolicy.Parse(b)
		if err != nil {
			return
		}
		if _, err := rtpolicy.Parse(p.Marshal()); err != nil {
			t.Fatalf("re-parse of marshalled policy: %v", err)
		}
	})
}

// A policy names the PCR of each list source; firmware and resettable
// PCRs are refused, whatever the policy says.
func TestLogPCRs(t *testing.T) {
	c, err := rtpolicy.Parse([]byte(`{"intact_runtime_policy":1,"digests":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.LogPCR("ima"); n != 10 {
		t.Errorf("default ima pcr %d, want 10", n)
	}
	if n, _ := c.LogPCR("intact"); n != 13 {
		t.Errorf("default intact pcr %d, want 13", n)
	}
	if _, ok := c.LogPCR("other"); ok {
		t.Error("unknown source has a pcr")
	}
	c, err = rtpolicy.Parse([]byte(`{"intact_runtime_policy":1,"digests":{},"log_pcrs":{"intact":11}}`))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.LogPCR("intact"); n != 11 {
		t.Errorf("configured intact pcr %d, want 11", n)
	}
	for _, bad := range []string{`{"intact":23}`, `{"intact":16}`, `{"ima":0}`, `{"ima":7}`, `{"ima":20}`, `{"ima":17}`, `{"ima":-1}`, `{"other":10}`} {
		_, err := rtpolicy.Parse([]byte(`{"intact_runtime_policy":1,"digests":{},"log_pcrs":` + bad + `}`))
		if !errors.Is(err, rtpolicy.ErrFormat) {
			t.Errorf("log_pcrs %s: err %v, want rtpolicy.ErrFormat", bad, err)
		}
	}
	a := rtpolicy.Policy{Format: 1, Digests: map[string][]string{}}
	b := rtpolicy.Policy{Format: 1, Digests: map[string][]string{}, LogPCRs: map[string]int{"ima": 11}}
	d, err := rtpolicy.Diff(a, b)
	if err != nil || len(d.Flags) != 1 || d.Flags[0] != "log_pcrs.ima: 10 -> 11" {
		t.Errorf("diff = %+v, %v", d, err)
	}
	m, conf, err := rtpolicy.Merge([]rtpolicy.Policy{b, a}, []string{"b", "a"})
	if err != nil || m.LogPCRs["ima"] != 11 || len(conf) != 1 || conf[0].Kind != rtpolicy.ConflictLogPCR {
		t.Errorf("merge = %+v, %+v, %v", m.LogPCRs, conf, err)
	}
}

// TestEvaluateBootRecord: the boot id record that starts intact's lists
// (record 1, ima-buf "intact-boot") measures no file and is left out; the
// same name anywhere else, or as a file record, is judged like any other
// record, so it cannot hide a file.
func TestEvaluateBootRecord(t *testing.T) {
	p, err := rtpolicy.Parse([]byte(`{"intact_runtime_policy": 1, "name": "t", "digests": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	boot, err := mlog.NewBufferRecord(13, mlog.BootRecordName, []byte("0b1e8c3a-boot"), digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	file := rec(t, mlog.BootRecordName, "evil", nil)
	for _, tc := range []struct {
		name  string
		index int64
		r     *mlog.Record
		want  string
	}{
		{"boot record", 1, &boot, ""},
		{"boot record first (older lists)", 0, &boot, ""},
		{"boot record later in the list", 5, &boot, rtpolicy.NotInPolicy},
		{"file record named intact-boot", 1, file, rtpolicy.NotInPolicy},
	} {
		got := ""
		if f := p.Evaluate(tc.index, tc.r); f != nil {
			got = f.Reason
		}
		if got != tc.want {
			t.Errorf("%s: Evaluate = %q, want %q", tc.name, got, tc.want)
		}
	}
}
