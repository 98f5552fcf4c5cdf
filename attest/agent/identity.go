// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/tpm"
)

// Identity is an agent's persistent identity: its AK and its TLS key and
// self-signed certificate (pinned by the verifier at enrollment).
type Identity struct {
	AK   *tpm.AK
	Cert tls.Certificate
}

// AKCreator creates attestation keys (*tpm.TPM).
type AKCreator interface {
	CreateAK() (*tpm.AK, error)
}

// Files of the agent's state directory.
const (
	akFile   = "ak.json"
	certFile = "tls.crt"
	keyFile  = "tls.key"
)

// LoadOrCreateIdentity loads the identity from dir, creating what is
// missing: an AK in the TPM (its wrapped blob stored in ak.json) and a
// TLS key pair. Files are written atomically, mode 0600.
func LoadOrCreateIdentity(dir string, t AKCreator) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	id := &Identity{}
	b, err := os.ReadFile(filepath.Join(dir, akFile))
	switch {
	case err == nil:
		id.AK = new(tpm.AK)
		if err := json.Unmarshal(b, id.AK); err != nil || len(id.AK.Public) == 0 {
			return nil, fmt.Errorf("%s: not an attestation key file", filepath.Join(dir, akFile))
		}
	case errors.Is(err, fs.ErrNotExist):
		if id.AK, err = t.CreateAK(); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(id.AK)
		if err := atomicfile.WriteFile(filepath.Join(dir, akFile), b, 0o600, true); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if errors.Is(err, fs.ErrNotExist) {
		certPEM, keyPEM, gerr := attest.NewSelfSigned("intact-agent")
		if gerr != nil {
			return nil, gerr
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, keyFile), keyPEM, 0o600, false); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, certFile), certPEM, 0o644, false); err != nil {
			return nil, err
		}
		cert, err = tls.X509KeyPair(certPEM, keyPEM)
	}
	if err != nil {
		return nil, err
	}
	id.Cert = cert
	return id, nil
}

// Reopening is a TPM opened afresh for each operation and closed after:
// for a swtpm, which serves one connection at a time and is shared with
// the process that measures (intactd's mlog.Measurer, or a test).
type Reopening struct {
	Spec string
}

func (r Reopening) with(fn func(*tpm.TPM) error) error {
	t, err := tpm.Open(r.Spec)
	if err != nil {
		return err
	}
	defer t.Close()
	return fn(t)
}

func (r Reopening) EndorsementKey() (ek *tpm.EK, err error) {
	err = r.with(func(t *tpm.TPM) error { ek, err = t.EndorsementKey(); return err })
	return
}

func (r Reopening) CreateAK() (ak *tpm.AK, err error) {
	err = r.with(func(t *tpm.TPM) error { ak, err = t.CreateAK(); return err })
	return
}

func (r Reopening) ReadQuotedPCRs(ak *tpm.AK, nonce []byte, sel tpm.QuoteSelection) (q *tpm.Quote, v digest.PCRs, err error) {
	err = r.with(func(t *tpm.TPM) error { q, v, err = t.ReadQuotedPCRs(ak, nonce, sel); return err })
	return
}

func (r Reopening) ActivateCredential(ak *tpm.AK, blob, secret []byte) (s []byte, err error) {
	err = r.with(func(t *tpm.TPM) error { s, err = t.ActivateCredential(ak, blob, secret); return err })
	return
}
