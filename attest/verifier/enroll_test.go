// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/tpm"
)

// tcpRelay forwards every connection to target, bytes untouched: a
// "cuckoo" in front of another machine's agent.
func tcpRelay(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn // closed at cleanup: a verifier still running keeps its connections open
	closed := false      // set at cleanup: a connection registered later is closed at once
	// track registers c to be closed at cleanup, or closes it now if the
	// cleanup has already run its close loop (a connection accepted just
	// before ln.Close would otherwise be relayed forever and hang wg.Wait).
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer u.Close()
				if !track(u) {
					return
				}
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var se *verifier.SecurityError
	if !errors.As(err, &se) || se.Reason != reason {
		t.Fatalf("err = %v, want a %s failure", err, reason)
	}
	t.Logf("refused: %v", err)
}

// A plain TCP relay from a second address to an enrolled agent, enrolled
// as a second agent, is refused: its TPM is already enrolled. So is the
// same agent under a second id, and a second agent (its own AK) on the
// same TPM reporting its EK's public area in another encoding.
func TestDuplicateTPMRefused(t *testing.T) {
	a := newTestAgent(t, nil)
	tv := startVerifier(t, "")
	ctx := context.Background()
	tv.enroll(a, "a", policyFor())

	relay := tcpRelay(t, a.addr())
	if _, err := tv.v.PutPolicy(ctx, "p", policyFor()); err != nil {
		t.Fatal(err)
	}
	_, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "b", Addr: relay, Policy: "p"})
	wantReason(t, err, verifier.ReasonDuplicateTPM)
	if !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("the refusal does not name the enrolled agent: %v", err)
	}
	if _, err := tv.st.GetAgent(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("relayed agent stored: %v", err)
	}
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "c", Addr: a.addr(), Policy: "p"})
	wantReason(t, err, verifier.ReasonDuplicateTPM)
	// The same id again is ErrExists, as before.
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "a", Addr: a.addr(), Policy: "p"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("enrolling id a again: %v, want ErrExists", err)
	}

	// A second agent on the same TPM: its own AK, and its EK's public
	// area with another auth policy (the same key: activation works).
	dir := t.TempDir()
	tp := agent.Reopening{Spec: a.sw.Spec()}
	id2, err := agent.LoadOrCreateIdentity(dir, tp)
	if err != nil {
		t.Fatal(err)
	}
	second, err := agent.New(agent.Config{TPM: reencodedEK{tp}, AK: id2.AK, Log: agent.NewFileLog(a.list, attest.LogIntact),
		LogPCR: logPCR, CertDER: id2.Cert.Certificate[0], Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(second)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{id2.Cert}, MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	defer srv.Close()
	_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "d", Addr: strings.TrimPrefix(srv.URL, "https://"), Policy: "p"})
	wantReason(t, err, verifier.ReasonDuplicateTPM)

	// Once the first enrollment is removed, the machine enrolls under a
	// new id.
	if err := tv.v.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "b", Addr: relay, Policy: "p"}); err != nil {
		t.Fatalf("after removing a: %v", err)
	}
}

// reencodedEK reports the TPM's EK with another auth policy in its
// public area.
type reencodedEK struct{ agent.Reopening }

func (r reencodedEK) EndorsementKey() (*tpm.EK, error) {
	ek, err := r.Reopening.EndorsementKey()
	if err != nil {
		return nil, err
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ek.Public)
	if err != nil {
		return nil, err
	}
	pub.AuthPolicy = tpm2.TPM2BDigest{Buffer: make([]byte, 32)}
	ek.Public = tpm2.Marshal(*pub)
	return ek, nil
}

// The agent does not choose its PCR: intact's list served on PCR 23
// (resettable: a reset and a fresh list erase what ran), or on another
// PCR than the policy's, is refused at enrollment; a policy may name
// another PCR in 8-15.
func TestLogPCRRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pcr    int
		policy string // log_pcrs of the policy
		ok     bool
	}{
		{"resettable pcr 23", 23, "", false},
		{"resettable pcr 16", 16, "", false},
		{"firmware pcr 7", 7, "", false},
		{"the kernel's pcr 10 for intact's list", 10, "", false},
		{"pcr 11 of the policy", 11, `{"intact":11}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAgent(t, nil)
			a.measure()
			srv, err := agent.New(agent.Config{TPM: agent.Reopening{Spec: a.sw.Spec()}, AK: a.id.AK, Log: agent.NewFileLog(a.list, attest.LogIntact),
				LogPCR: tc.pcr, CertDER: a.id.Cert.Certificate[0], Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			a.setTamper(func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool { srv.ServeHTTP(w, r); return true })
			tv := startVerifier(t, "")
			tv.allow(a)
			ctx := context.Background()
			doc := `{"intact_runtime_policy":1,"digests":{}}`
			if tc.policy != "" {
				doc = `{"intact_runtime_policy":1,"digests":{},"log_pcrs":` + tc.policy + `}`
			}
			if _, err := tv.v.PutPolicy(ctx, "p", []byte(doc)); err != nil {
				t.Fatal(err)
			}
			_, err = tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "x", Addr: a.addr(), Policy: "p"})
			if tc.ok {
				if err != nil {
					t.Fatalf("Enroll on pcr %d: %v", tc.pcr, err)
				}
				return
			}
			wantReason(t, err, verifier.ReasonLogPCR)
		})
	}
}
