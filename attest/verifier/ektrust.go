// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/ekcert"
)

// ReasonEKUntrusted: the agent's endorsement key is not one the verifier
// trusts (its certificate does not chain to a CA of the EK store, it has
// none, or it is not a TPM EK certificate) and it is not allowlisted.
const ReasonEKUntrusted = "ek-untrusted"

// EKTrustFunc returns the EK trust anchors for one enrollment (read
// afresh each time, so that an operator's added CA or allowlist entry
// applies without a restart).
type EKTrustFunc func() (*ekcert.Trust, error)

// EKTrustFiles is an EKTrustFunc over CA store directories and
// allowlist files, read at each call.
func EKTrustFiles(caDirs, allowFiles []string) EKTrustFunc {
	return func() (*ekcert.Trust, error) {
		t := &ekcert.Trust{Allow: &ekcert.Allowlist{}}
		if len(caDirs) > 0 {
			s, err := ekcert.LoadStore(caDirs...)
			if err != nil {
				return nil, err
			}
			t.Store = s
		}
		for _, f := range allowFiles {
			a, err := ekcert.LoadAllowlist(f)
			if err != nil {
				return nil, err
			}
			for _, h := range a.Hashes() {
				name, _ := a.Lookup(h)
				t.Allow.Add(h, name)
			}
		}
		return t, nil
	}
}

// checkEK decides whether the enrolling agent's EK is trusted: its
// certificate (and the chain the TPM supplied) chains to the EK CA
// store, or its key is allowlisted. A certificate for another key is
// refused either way.
func (v *Verifier) checkEK(e *attest.Enrollment) (*ekcert.Result, error) {
	pub, err := ekPublicKey(e.EKPublic)
	if err != nil {
		return nil, secErr(ReasonEnrollment, "ek: %v", err)
	}
	if v.o.EKTrust == nil {
		h, _ := ekcert.KeyHash(pub)
		return nil, secErr(ReasonEKUntrusted, "this verifier has no ek ca store or allowlist (serve --ek-ca DIR, --ek-allow FILE); ek %s", h)
	}
	trust, err := v.o.EKTrust()
	if err != nil {
		// The operator's files are broken: an operational error, not the
		// agent's fault.
		return nil, fmt.Errorf("ek trust: %w", err)
	}
	r, err := trust.Check(pub, e.EKCert, e.EKChain, v.o.Now())
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, ekcert.ErrKeyMismatch):
		return nil, secErr(ReasonEnrollment, "%v", err)
	}
	return nil, secErr(ReasonEKUntrusted, "%v", err)
}

// EKInfo is what an agent reports of its endorsement key, and the
// verdict of a trust check on it (for `intact-verifier ek`).
type EKInfo struct {
	KeyHash string
	Cert    *ekcert.Cert // nil: the TPM has no EK certificate
	Chain   int          // further certificates from the TPM's NV
	Result  *ekcert.Result
	Err     error // the trust check's refusal (nil: trusted, or not checked)
}

// InspectEK fetches an agent's enrollment data (pinning certDER when
// given, else trusting the certificate it presents) and checks its EK
// against trust when not nil. It presents a throwaway client
// certificate: an agent answers it before it is enrolled (an enrolled
// agent answers only its verifier).
func InspectEK(ctx context.Context, addr string, certDER []byte, timeout time.Duration, trust *ekcert.Trust, now time.Time) (*EKInfo, error) {
	certPEM, keyPEM, err := attest.NewSelfSigned("intact-verifier-ek")
	if err != nil {
		return nil, err
	}
	client, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c := newAgentClient(addr, certDER, nil, &client, timeout)
	defer c.close()
	e, err := c.enrollment(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading enrollment data: %w", err)
	}
	pub, err := ekPublicKey(e.EKPublic)
	if err != nil {
		return nil, fmt.Errorf("ek: %w", err)
	}
	info := &EKInfo{Chain: len(e.EKChain)}
	if info.KeyHash, err = ekcert.KeyHash(pub); err != nil {
		return nil, err
	}
	if len(e.EKCert) > 0 {
		if info.Cert, err = ekcert.Parse(e.EKCert); err != nil {
			info.Err = err
		}
	}
	if trust != nil && info.Err == nil {
		info.Result, info.Err = trust.Check(pub, e.EKCert, e.EKChain, now)
	}
	return info, nil
}
