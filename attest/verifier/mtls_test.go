// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
)

// Must-show (issue 12): the agent answers only its verifier. Before
// enrollment a client (with some certificate) gets the enrollment data
// and nothing else: not the measurement list, not a quote. The
// enrolling verifier's client certificate is pinned (written to the
// agent's verifier.crt), and from then on a request without a client
// certificate, or with another one, is refused at the TLS handshake,
// while the verifier attests as before.
func TestAgentAnswersOnlyItsVerifier(t *testing.T) {
	a := newTestAgent(t, nil)
	base := "https://" + a.addr()
	other, err := selfSigned("intruder")
	if err != nil {
		t.Fatal(err)
	}
	client := func(cert *tls.Certificate) *http.Client {
		c := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
	}
	get := func(c *http.Client, path string) (int, error) {
		resp, err := c.Get(base + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	quote := attest.PathQuote + "?nonce=0102030405060708090a0b0c0d0e0f10&pcrs=sha256:13&offset=0"
	log := attest.PathLog + "?offset=0"

	// No client certificate: refused at the handshake, enrolled or not.
	if code, err := get(client(nil), attest.PathEnrollment); err == nil {
		t.Fatalf("no client certificate: answered %d", code)
	}
	// Not enrolled yet: any client certificate reads the enrollment data
	// (public keys), nothing else.
	if code, err := get(client(other), attest.PathEnrollment); err != nil || code != http.StatusOK {
		t.Fatalf("enrollment data before enrollment: %d %v", code, err)
	}
	for _, p := range []string{log, quote, attest.PathBootLog} {
		if code, err := get(client(other), p); err != nil || code != http.StatusForbidden {
			t.Errorf("GET %s before enrollment: %d %v, want 403", p, code, err)
		}
	}

	tv := startVerifier(t, "")
	dir := t.TempDir()
	ok1 := filepath.Join(dir, "ok1")
	a.measure(ok1)
	tv.enroll(a, "a1", policyFor(ok1))
	tv.wait("a1", 2*interval+10*time.Second, "trusted", state(store.StateTrusted))
	pinned, err := agent.LoadVerifierPin(filepath.Join(a.dir, agent.VerifierFile))
	if err != nil || !pinned.Pinned() || !pinned.Match(verifierCert(t).Certificate[0]) {
		t.Fatalf("the agent did not pin the verifier's certificate: %v", err)
	}

	// Enrolled: no client certificate, or another one, is refused.
	for name, c := range map[string]*http.Client{"no certificate": client(nil), "another certificate": client(other)} {
		for _, p := range []string{attest.PathEnrollment, log, quote} {
			if code, err := get(c, p); err == nil {
				t.Errorf("%s: GET %s answered %d, want a refused handshake", name, p, code)
			}
		}
	}
	// The verifier's own certificate is answered.
	if code, err := get(client(verifierCert(t)), log); err != nil || code != http.StatusOK {
		t.Errorf("the verifier's certificate: %d %v", code, err)
	}
	// And attestation goes on.
	before := len(a.quoteOffsets())
	if !testenv.Until(2*interval+10*time.Second, func() bool { return len(a.quoteOffsets()) >= before+2 }) {
		t.Fatal("no quotes after the intruders were refused")
	}
	st, err := tv.st.GetAgent(context.Background(), "a1")
	if err != nil || st.State != store.StateTrusted {
		t.Fatalf("agent after the intruders: %+v %v", st, err)
	}
	// A pin file that holds no certificate is an error, not an open agent.
	bad := filepath.Join(dir, "bad.crt")
	os.WriteFile(bad, []byte("junk"), 0o644)
	if _, err := agent.LoadVerifierPin(bad); err == nil {
		t.Error("a junk verifier pin loaded")
	}
	if p, err := agent.LoadVerifierPin(filepath.Join(dir, "none.crt")); err != nil || p.Pinned() {
		t.Errorf("a missing pin file: %v", err)
	}
}

func selfSigned(cn string) (*tls.Certificate, error) {
	certPEM, keyPEM, err := attest.NewSelfSigned(cn)
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	return &c, err
}
