// SPDX-License-Identifier: Apache-2.0

package agent_test

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm/sim"
)

func record(t *testing.T, path string) []byte {
	t.Helper()
	r, err := mlog.NewRecord(13, mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: make([]byte, 32), Path: path}, digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	return r.AppendBinary(nil)
}

func TestFileLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list")
	var all []byte
	var recs [][]byte
	for i := 0; i < 5; i++ {
		r := record(t, strings.Repeat("x", i+1))
		recs = append(recs, r)
		all = append(all, r...)
	}
	// A partial record at the end (being written) is not served.
	if err := os.WriteFile(path, append(bytes.Clone(all[:len(all)-len(recs[4])]), recs[4][:10]...), 0o600); err != nil {
		t.Fatal(err)
	}
	l := agent.NewFileLog(path, attest.LogIntact)
	c, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if c.Count != 0 {
		t.Errorf("a list ending in a partial record: %d records served, want none until it is whole", c.Count)
	}
	if err := os.WriteFile(path, all, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start     int64
		max       int
		wantCount int64
		wantMore  bool
	}{
		{0, 1 << 20, 5, false},
		{2, 1 << 20, 3, false},
		{0, len(recs[0]) + len(recs[1]), 2, true},
		{5, 1 << 20, 0, false},
		{9, 1 << 20, 0, false},
	} {
		c, err := l.Read(tc.start, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if c.Count != tc.wantCount || c.More != tc.wantMore || c.Start != tc.start {
			t.Errorf("Read(%d, %d) = count %d more %v start %d", tc.start, tc.max, c.Count, c.More, c.Start)
			continue
		}
		if tc.wantCount == 0 {
			continue
		}
		var want []byte
		for _, r := range recs[tc.start : tc.start+tc.wantCount] {
			want = append(want, r...)
		}
		if !bytes.Equal(c.Data, want) {
			t.Errorf("Read(%d, %d): data differs", tc.start, tc.max)
		}
	}
	if _, err := l.Read(0, 1); err == nil {
		t.Error("a record larger than max was served")
	}
	// Appended records are served next time.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(record(t, "/new"))
	f.Close()
	if c, _ := l.Read(5, 1<<20); c.Count != 1 {
		t.Errorf("after append: %d records from 5", c.Count)
	}
}

func TestAgentHandler(t *testing.T) {
	tp, err := sim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	dir := t.TempDir()
	id, err := agent.LoadOrCreateIdentity(dir, tp)
	if err != nil {
		t.Fatal(err)
	}
	again, err := agent.LoadOrCreateIdentity(dir, tp)
	if err != nil || !bytes.Equal(again.AK.Public, id.AK.Public) || !bytes.Equal(again.Cert.Certificate[0], id.Cert.Certificate[0]) {
		t.Fatalf("identity not kept: %v", err)
	}
	list := filepath.Join(dir, "list")
	m, err := agent.OpenMeasurer(tp, list, 13)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := agent.New(agent.Config{TPM: tp, AK: id.AK, Log: agent.NewFileLog(list, attest.LogIntact), LogPCR: 13, CertDER: id.Cert.Certificate[0], Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
		return rec
	}
	rec := get(attest.PathEnrollment)
	e, err := attest.DecodeEnrollment(rec.Body)
	if err != nil || !bytes.Equal(e.AKName, id.AK.Name) || e.LogPCR != 13 {
		t.Fatalf("enrollment: %v %+v", err, e)
	}
	nonce := hex.EncodeToString(bytes.Repeat([]byte{3}, 32))
	rec = get(attest.PathQuote + "?nonce=" + nonce + "&pcrs=sha256:0,13&offset=0")
	q, err := attest.DecodeQuoteResponse(rec.Body)
	if err != nil || q.Log == nil || q.Log.Count != 2 || len(q.PCRs["sha256"]) != 2 { // boot_aggregate, boot id
		t.Fatalf("quote: %v %+v", err, q)
	}
	for _, bad := range []string{
		attest.PathQuote + "?nonce=zz&pcrs=sha256:0",
		attest.PathQuote + "?nonce=" + nonce + "&pcrs=sha256:99",
		attest.PathQuote + "?nonce=" + nonce + "&pcrs=sha256:0&offset=-1",
		attest.PathLog + "?offset=x",
	} {
		if rec := get(bad); rec.Code != http.StatusBadRequest && rec.Code != http.StatusServiceUnavailable {
			t.Errorf("GET %s = %d", bad, rec.Code)
		}
	}
	// No boot log (none configured, or the firmware's file absent): 404,
	// which the verifier records as "none", and no warning in the log.
	logged.Reset()
	if rec := get(attest.PathBootLog); rec.Code != http.StatusNotFound {
		t.Errorf("bootlog without one = %d", rec.Code)
	}
	nolog, err := agent.New(agent.Config{TPM: tp, AK: id.AK, Log: agent.NewFileLog(list, attest.LogIntact), LogPCR: 13,
		CertDER: id.Cert.Certificate[0], Logger: logger, BootLog: filepath.Join(dir, "binary_bios_measurements")})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	nolog.ServeHTTP(rec, httptest.NewRequest("GET", attest.PathBootLog, nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("bootlog with a missing file = %d", rec.Code)
	}
	if logged.Len() != 0 {
		t.Errorf("a missing boot log is logged at info or above:\n%s", logged.String())
	}
	// Activation of garbage is refused; the body limit holds.
	body, _ := json.Marshal(attest.ActivateRequest{Credential: []byte{1, 2}, Secret: []byte{3}})
	r := httptest.NewRecorder()
	a.ServeHTTP(r, httptest.NewRequest("POST", attest.PathActivate, bytes.NewReader(body)))
	if r.Code != http.StatusUnprocessableEntity {
		t.Errorf("activate(garbage) = %d", r.Code)
	}
	r = httptest.NewRecorder()
	a.ServeHTTP(r, httptest.NewRequest("POST", attest.PathActivate, bytes.NewReader(bytes.Repeat([]byte("a"), attest.MaxActivate+10))))
	if r.Code != http.StatusBadRequest {
		t.Errorf("activate(oversized) = %d", r.Code)
	}
	_ = crypto.SHA256
}
