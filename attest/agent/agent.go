// SPDX-License-Identifier: Apache-2.0

// Package agent is intact's attestation agent: an http.Handler serving
// the attest protocol (enrollment data, quotes, the measurement list
// from an offset, the boot event log, credential activation) from a TPM
// and a measurement list behind small interfaces. intactd mounts it on
// its HTTPS listener; intact-agent runs it alone.
package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/tpm"
)

// TPM is what the agent needs of a TPM. *tpm.TPM satisfies it, and so
// does Reopening.
type TPM interface {
	EndorsementKey() (*tpm.EK, error)
	ReadQuotedPCRs(ak *tpm.AK, nonce []byte, sel tpm.QuoteSelection) (*tpm.Quote, digest.PCRs, error)
	ActivateCredential(ak *tpm.AK, credentialBlob, encSecret []byte) ([]byte, error)
}

// Config configures an Agent.
type Config struct {
	TPM     TPM
	AK      *tpm.AK
	Log     Log
	LogPCR  int    // the PCR the list extends (13 for intact's list, 10 for the kernel's)
	BootLog string // path of the TCG boot event log; "" if none
	CertDER []byte // the agent's own TLS certificate (bound into activation proofs)
	Logger  *slog.Logger
	// Verifier, when set, is the verifier this agent answers (mutual
	// TLS; see VerifierPin): requests from any other client are refused
	// (403), and before a verifier is pinned only the enrollment data
	// and the credential activation are served; a successful activation
	// pins its client. intactd and intact-agent always set it; nil
	// serves any client (tests of the handler alone).
	Verifier *VerifierPin
}

// Agent serves the agent API.
type Agent struct {
	cfg Config
	mux *http.ServeMux

	ekMu sync.Mutex
	ek   *tpm.EK
}

// New returns an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.TPM == nil || cfg.AK == nil || cfg.Log == nil || len(cfg.CertDER) == 0 {
		return nil, errors.New("agent: tpm, ak, log and certificate are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET "+attest.PathEnrollment, a.enrollment)
	a.mux.HandleFunc("POST "+attest.PathActivate, a.activate)
	a.mux.HandleFunc("GET "+attest.PathQuote, a.quote)
	a.mux.HandleFunc("GET "+attest.PathLog, a.log)
	a.mux.HandleFunc("GET "+attest.PathBootLog, a.bootLog)
	return a, nil
}

func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Verifier != nil {
		if err := a.authorize(r); err != nil {
			a.fail(w, r, http.StatusForbidden, err)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

func (a *Agent) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	a.cfg.Logger.Warn("agent request failed", "path", r.URL.Path, "err", err)
	http.Error(w, err.Error(), code)
}

func (a *Agent) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// endorsementKey reads the EK once (a failure is tried again next time).
func (a *Agent) endorsementKey() (*tpm.EK, error) {
	a.ekMu.Lock()
	defer a.ekMu.Unlock()
	if a.ek != nil {
		return a.ek, nil
	}
	ek, err := a.cfg.TPM.EndorsementKey()
	if err != nil {
		return nil, err
	}
	a.ek = ek
	return ek, nil
}

func (a *Agent) enrollment(w http.ResponseWriter, r *http.Request) {
	ek, err := a.endorsementKey()
	if err != nil {
		a.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	a.reply(w, &attest.Enrollment{
		EKPublic: ek.Public, EKCert: ek.Cert, EKChain: ek.Chain,
		AKPublic: a.cfg.AK.Public, AKName: a.cfg.AK.Name,
		Log: a.cfg.Log.Source(), LogPCR: a.cfg.LogPCR,
	})
}

func (a *Agent) activate(w http.ResponseWriter, r *http.Request) {
	req, err := attest.DecodeActivateRequest(http.MaxBytesReader(w, r.Body, attest.MaxActivate))
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err)
		return
	}
	secret, err := a.cfg.TPM.ActivateCredential(a.cfg.AK, req.Credential, req.Secret)
	if err != nil {
		a.fail(w, r, http.StatusUnprocessableEntity, err)
		return
	}
	if a.cfg.Verifier != nil {
		// The verifier that enrolls this agent is the one it answers
		// from now on.
		if err := a.cfg.Verifier.pin(clientCert(r)); err != nil {
			a.fail(w, r, http.StatusForbidden, err)
			return
		}
	}
	a.reply(w, &attest.ActivateResponse{Proof: attest.ActivationProof(secret, a.cfg.CertDER)})
}

func (a *Agent) quote(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	nonce, err := attest.ParseNonce(q.Get("nonce"))
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err)
		return
	}
	sel, err := attest.ParseSelection(q.Get("pcrs"))
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err)
		return
	}
	resp, err := a.Quote(nonce, sel, q.Get("offset"))
	if err != nil {
		a.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	a.reply(w, resp)
}

// Quote quotes sel over nonce and, when offset is not "", adds the
// measurement list from that record on. The list is read after the
// quote, so that it reaches at least as far as the quoted PCR.
func (a *Agent) Quote(nonce []byte, sel attest.Selection, offset string) (*attest.QuoteResponse, error) {
	var start int64
	if offset != "" {
		var err error
		if start, err = attest.ParseOffset(offset); err != nil {
			return nil, err
		}
	}
	quote, vals, err := a.cfg.TPM.ReadQuotedPCRs(a.cfg.AK, nonce, tpm.QuoteSelection(sel))
	if err != nil {
		return nil, err
	}
	resp := &attest.QuoteResponse{Attest: quote.Attest, Signature: quote.Signature, PCRs: map[string]map[int][]byte{}}
	for h, v := range vals {
		resp.PCRs[attest.BankName(h)] = v
	}
	if offset != "" {
		if resp.Log, err = a.cfg.Log.Read(start, attest.MaxLogChunk); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func (a *Agent) log(w http.ResponseWriter, r *http.Request) {
	start, err := attest.ParseOffset(r.URL.Query().Get("offset"))
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err)
		return
	}
	c, err := a.cfg.Log.Read(start, attest.MaxLogChunk)
	if err != nil {
		a.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	a.reply(w, c)
}

func (a *Agent) bootLog(w http.ResponseWriter, r *http.Request) {
	// A machine without a boot event log (no firmware TPM log, a simulator)
	// is normal: the verifier records "none". Not a warning.
	if a.cfg.BootLog == "" {
		a.cfg.Logger.Debug("no boot event log configured", "path", r.URL.Path)
		http.Error(w, "no boot event log", http.StatusNotFound)
		return
	}
	f, err := os.Open(a.cfg.BootLog)
	if errors.Is(err, fs.ErrNotExist) {
		a.cfg.Logger.Debug("no boot event log", "file", a.cfg.BootLog)
		http.Error(w, "no boot event log", http.StatusNotFound)
		return
	}
	if err != nil {
		a.fail(w, r, http.StatusNotFound, err)
		return
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, attest.MaxBootLog+1))
	if err != nil {
		a.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if len(b) > attest.MaxBootLog {
		a.fail(w, r, http.StatusInsufficientStorage, fmt.Errorf("boot event log larger than %d bytes", attest.MaxBootLog))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}
