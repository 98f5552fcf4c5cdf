// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/tpm"
)

// An agent enrolls and is trusted by its second attestation; a file
// outside the policy runs and the agent fails, naming the file, by the
// second attestation after.
func TestTrustedThenPolicyFailure(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1 := filepath.Join(dir, "ok1")
	evil := filepath.Join(dir, "evil")
	a.measure(ok1)
	tv := startVerifier(t, "")
	start := time.Now()
	tv.enroll(a, "a1", policyFor(ok1))
	got := tv.wait("a1", 2*interval+5*time.Second, "trusted", state(store.StateTrusted))
	if got.Attestations > 2 {
		t.Errorf("trusted after %d attestations, want at most 2", got.Attestations)
	}
	t.Logf("trusted %v after enrollment began (%d attestations, interval %v)", time.Since(start), got.Attestations, interval)
	if got.Progress.LogOffset != 3 || !got.Progress.BootChecked {
		t.Errorf("progress = %+v, want 3 records (boot_aggregate, boot id, ok1) and the boot_aggregate checked", got.Progress)
	}
	// Staying trusted adds no history row (one per heartbeat, an hour by
	// default): the first trusted result is the newest row.
	got = tv.wait("a1", 3*interval+5*time.Second, "attested twice more", func(x *store.Agent) bool { return x.Attestations >= got.Attestations+2 })
	if h, err := tv.st.History(context.Background(), "a1", 100); err != nil || len(h) == 0 || h[0].State != store.StateTrusted ||
		h[0].Attestations >= got.Attestations-1 || len(h) > 2 {
		t.Errorf("history after %d attestations, trusted from the second at the latest = %+v, %v", got.Attestations, h, err)
	}
	before := got.Attestations
	a.measure(evil)
	got = tv.wait("a1", 2*interval+5*time.Second, "failed", state(store.StateFailed))
	if got.Attestations-before > 2 {
		t.Errorf("failed %d attestations after the file ran, want at most 2", got.Attestations-before)
	}
	if r := reasons(got); !strings.Contains(r, evil) || !strings.Contains(r, "not-in-policy") || got.Kind != store.KindSecurity {
		t.Errorf("reasons = %q (kind %s), want %s not-in-policy", r, got.Kind, evil)
	}
	h, err := tv.st.History(context.Background(), "a1", 100)
	if err != nil || len(h) < 2 || h[0].State != store.StateFailed || h[len(h)-1].State != store.StateTrusted {
		t.Errorf("history = %+v, %v", h, err)
	}
}

// rewriteRecords lets f change the list records of quote responses.
func rewriteRecords(t *testing.T, f func([]mlog.Record) []mlog.Record) func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	return rewriteQuote(func(q *attest.QuoteResponse) {
		if q.Log == nil || q.Log.Count < 3 {
			return
		}
		l, err := mlog.ParseBinary(q.Log.Data, mlog.Options{})
		if err != nil {
			t.Error(err)
			return
		}
		recs := f(append([]mlog.Record(nil), l.UnverifiedRecords()...))
		var b []byte
		for i := range recs {
			b = recs[i].AppendBinary(b)
		}
		q.Log.Data, q.Log.Count = b, int64(len(recs))
	})
}

func TestAttacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		early  bool // tamper from enrollment on (else once trusted)
		tamper func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool
		act    func(t *testing.T, a *testAgent)
		want   string
	}{
		{name: "replayed quote", want: verifier.ReasonQuoteNonce,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				var old *attest.QuoteResponse
				return rewriteQuote(func(q *attest.QuoteResponse) {
					if old == nil {
						old = q
						return
					}
					*q = *old
				})
			}},
		{name: "quote by another ak", want: verifier.ReasonQuoteSignature,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				tp := agent.Reopening{Spec: a.sw.Spec()}
				ak2, err := tp.CreateAK()
				if err != nil {
					t.Fatal(err)
				}
				other, err := agent.New(agent.Config{TPM: tp, AK: ak2, Log: agent.NewFileLog(a.list, attest.LogIntact), LogPCR: logPCR, CertDER: []byte{1}})
				if err != nil {
					t.Fatal(err)
				}
				return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
					if r.URL.Path != attest.PathQuote {
						return false
					}
					other.ServeHTTP(w, r)
					return true
				}
			}},
		{name: "record removed", early: true, want: verifier.ReasonLogReplay,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				return rewriteRecords(t, func(r []mlog.Record) []mlog.Record { return append(r[:2], r[3:]...) })
			}},
		{name: "record altered", early: true, want: verifier.ReasonLogTemplateHash,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				return rewriteRecords(t, func(r []mlog.Record) []mlog.Record {
					r[2].Data = append([]byte(nil), r[2].Data...)
					r[2].Data[len(r[2].Data)-2] ^= 1 // a letter of the path
					return r
				})
			}},
		{name: "record altered with its template digest", early: true, want: verifier.ReasonLogReplay,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				return rewriteRecords(t, func(r []mlog.Record) []mlog.Record {
					r[2].Data = append([]byte(nil), r[2].Data...)
					r[2].Data[len(r[2].Data)-2] ^= 1
					d, err := r[2].TemplateDigest(digest.SHA1)
					if err != nil {
						t.Fatal(err)
					}
					r[2].Digest = d
					return r
				})
			}},
		{name: "records reordered", early: true, want: verifier.ReasonLogReplay,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				return rewriteRecords(t, func(r []mlog.Record) []mlog.Record { r[1], r[2] = r[2], r[1]; return r })
			}},
		{name: "pcr values not those quoted", want: verifier.ReasonPCRDigest,
			tamper: func(t *testing.T, a *testAgent) func(http.ResponseWriter, *http.Request, http.Handler) bool {
				return rewriteQuote(func(q *attest.QuoteResponse) { q.PCRs["sha256"][logPCR][0] ^= 1 })
			}},
		{name: "pcr extended outside the list", want: verifier.ReasonLogReplay,
			act: func(t *testing.T, a *testAgent) {
				a.withTPM(func(tp *tpm.TPM) {
					if err := tp.ExtendPCRData(logPCR, []byte("unlogged")); err != nil {
						t.Fatal(err)
					}
				})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAgent(t, nil)
			dir := t.TempDir()
			files := []string{filepath.Join(dir, "f1"), filepath.Join(dir, "f2"), filepath.Join(dir, "f3")}
			a.measure(files...)
			tv := startVerifier(t, "")
			if tc.early && tc.tamper != nil {
				a.setTamper(tc.tamper(t, a))
			}
			tv.enroll(a, "x", policyFor(files...))
			if !tc.early {
				tv.wait("x", 10*time.Second, "trusted", state(store.StateTrusted))
				if tc.tamper != nil {
					a.setTamper(tc.tamper(t, a))
				}
				if tc.act != nil {
					tc.act(t, a)
				}
			}
			got := tv.wait("x", 10*time.Second, "failed", state(store.StateFailed))
			if got.Kind != store.KindSecurity || !strings.HasPrefix(reasons(got), tc.want+":") {
				t.Fatalf("failed with %q (%s), want reason %s", reasons(got), got.Kind, tc.want)
			}
			t.Logf("reason: %s", reasons(got))
		})
	}
}

// forgedTPM reports one TPM's EK and another TPM's AK.
type forgedTPM struct {
	agent.Reopening
	ek agent.Reopening
}

func (f forgedTPM) EndorsementKey() (*tpm.EK, error) { return f.ek.EndorsementKey() }

func TestForgedEnrollment(t *testing.T) {
	a := newTestAgent(t, nil)
	b := tpmtest.Start(t, tpmtest.Options{})
	forged, err := agent.New(agent.Config{TPM: forgedTPM{Reopening: agent.Reopening{Spec: a.sw.Spec()}, ek: agent.Reopening{Spec: b.Spec()}},
		AK: a.id.AK, Log: agent.NewFileLog(a.list, attest.LogIntact), LogPCR: logPCR, CertDER: a.id.Cert.Certificate[0]})
	if err != nil {
		t.Fatal(err)
	}
	a.setTamper(func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool { forged.ServeHTTP(w, r); return true })
	tv := startVerifier(t, "")
	tv.allow(a)
	tv.allowHash(b.EKHash(t)) // both EKs trusted: the activation must catch the forgery
	ctx := context.Background()
	tv.v.PutPolicy(ctx, "p", policyFor())
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "forged", Addr: a.addr(), Policy: "p"})
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != verifier.ReasonEnrollment {
		t.Fatalf("Enroll(ak of another tpm) = %v, want a %s failure", err, verifier.ReasonEnrollment)
	}
	t.Logf("refused: %v", err)
	if _, err := tv.st.GetAgent(ctx, "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("forged agent stored: %v", err)
	}
	// The honest agent (same certificate) enrolls.
	a.setTamper(nil)
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "honest", Addr: a.addr(), Policy: "p"}); err != nil {
		t.Fatalf("honest enrollment: %v", err)
	}
}

// A man in the middle of enrollment (another TLS certificate, the real
// agent behind) cannot produce the activation proof for its certificate.
func TestEnrollmentBoundToCertificate(t *testing.T) {
	a := newTestAgent(t, nil)
	// The man in the middle hands the agent the verifier's client
	// certificate as if the agent had seen it (stronger than a real one,
	// which cannot present the verifier's key).
	mitm := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.agent.ServeHTTP(w, r) }))
	mitm.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mitm.StartTLS()
	defer mitm.Close()
	tv := startVerifier(t, "")
	tv.allow(a)
	ctx := context.Background()
	tv.v.PutPolicy(ctx, "p", policyFor())
	_, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "m", Addr: strings.TrimPrefix(mitm.URL, "https://"), Policy: "p"})
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != verifier.ReasonEnrollment {
		t.Fatalf("Enroll through a different certificate = %v, want %s", err, verifier.ReasonEnrollment)
	}
}

// A TPM reset (reboot) mid-run is detected and the new boot is attested
// from its first record.
func TestReboot(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "f1"), filepath.Join(dir, "f2")}
	a.measure(files[0])
	tv := startVerifier(t, "")
	tv.enroll(a, "r", policyFor(files...))
	before := tv.wait("r", 10*time.Second, "trusted", state(store.StateTrusted))
	a.measure(files[1])
	tv.wait("r", 10*time.Second, "at 4 records", func(x *store.Agent) bool { return x.Progress.LogOffset == 4 })
	a.reboot()
	a.measure(files[1])
	got := tv.wait("r", 10*time.Second, "attested in its new boot", func(x *store.Agent) bool {
		return x.Progress.ResetCount > before.Progress.ResetCount && x.Progress.LogOffset == 3
	})
	if got.State != store.StateTrusted || !got.Progress.BootChecked {
		t.Fatalf("after reboot: %+v", got)
	}
	// The reboot is on the agent's timeline, after enrolled and trusted.
	tl, err := tv.v.Timeline(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, n := range tl {
		types = append(types, n.Type)
	}
	want := []string{verifier.EventEnrolled, verifier.EventTrusted, verifier.EventReboot}
	for i, ty := range types {
		if len(want) > 0 && ty == want[0] {
			want = want[1:]
		}
		if ty == verifier.EventReboot && (tl[i].State == "" || tl[i].EAR != "") {
			t.Errorf("reboot event %+v", tl[i])
		}
	}
	if len(want) > 0 {
		t.Errorf("timeline %v lacks %v in order", types, want)
	}
}

// A verifier restarted mid-run resumes each agent from its stored offset:
// the first list it asks for starts there, not at record 0.
func TestRestartResumes(t *testing.T) {
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "f1"), filepath.Join(dir, "f2"), filepath.Join(dir, "f3")}
	a.measure(files[0], files[1])
	tv := startVerifier(t, "")
	tv.enroll(a, "s", policyFor(files...))
	tv.wait("s", 10*time.Second, "trusted at 4 records", func(x *store.Agent) bool {
		return x.State == store.StateTrusted && x.Progress.LogOffset == 4
	})
	tv.stop()
	stored, _ := func() (*store.Agent, error) {
		tv2 := startVerifier(t, tv.db) // reopens the same database
		defer tv2.stop()
		n := len(a.quoteOffsets())
		a.measure(files[2])
		got := tv2.wait("s", 10*time.Second, "trusted at 5 records", func(x *store.Agent) bool {
			return x.State == store.StateTrusted && x.Progress.LogOffset == 5
		})
		after := a.quoteOffsets()[n:]
		if len(after) == 0 || after[0] != 4 {
			t.Fatalf("after the restart the verifier asked for the list from %v, want 4 first", after)
		}
		for _, off := range after {
			if off < 4 {
				t.Fatalf("after the restart the verifier asked for record %d again (offsets %v)", off, after)
			}
		}
		return got, nil
	}()
	if stored == nil {
		t.Fatal("no agent")
	}
}

var _ = crypto.SHA256
