// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/internal/strictjson"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/store"
)

// Operator API (HTTPS, bearer token on every request):
//
//	GET    /v1/agents              -> [AgentView]
//	POST   /v1/agents              AddAgentRequest -> AgentView (enrolls)
//	GET    /v1/agents/{id}         -> AgentView with history and timeline
//	GET    /v1/agents/{id}/ear     -> the agent's signed EAR (JWT); ?nonce= sets eat_nonce
//	GET    /v1/ear-key             -> the EAR signing key (JWK)
//	DELETE /v1/agents/{id}
//	POST   /v1/agents/{id}/ack     acknowledges a reboot after a gap (202; 409 if none, or
//	                               if another replica attests the agent: it is named)
//	GET    /v1/policies            -> [name]
//	PUT    /v1/policies/{name}     runtime (or measured-boot) policy JSON -> PolicyView
//	GET    /v1/policies/{name}     -> the runtime policy JSON
//
// Errors are {"error": "..."} with a 4xx/5xx status.
const (
	maxAddAgent = 64 << 10
	historyShow = 20
)

// AddAgentRequest is the body of POST /v1/agents.
type AddAgentRequest struct {
	ID     string `json:"id"`
	Addr   string `json:"addr"`
	Policy string `json:"policy"`
	Cert   string `json:"cert,omitempty"` // PEM certificate to pin; empty: pin the one presented
}

// DecodeAddAgent reads and checks an AddAgentRequest.
func DecodeAddAgent(r io.Reader) (*AddAgentRequest, []byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxAddAgent+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxAddAgent {
		return nil, nil, fmt.Errorf("request larger than %d bytes", maxAddAgent)
	}
	var req AddAgentRequest
	if err := strictjson.Decode(b, &req); err != nil {
		return nil, nil, fmt.Errorf("bad request: %v", err)
	}
	if err := CheckID(req.ID); err != nil {
		return nil, nil, err
	}
	if req.Addr == "" || len(req.Addr) > 256 || strings.ContainsAny(req.Addr, "/?#@ ") {
		return nil, nil, fmt.Errorf("addr %q: want host:port", req.Addr)
	}
	if req.Policy == "" || len(req.Policy) > 128 {
		return nil, nil, errors.New("policy name must have 1-128 characters")
	}
	var der []byte
	if req.Cert != "" {
		blk, rest := pem.Decode([]byte(req.Cert))
		if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, nil, errors.New("cert: want one PEM certificate")
		}
		if err := parseCert(blk.Bytes); err != nil {
			return nil, nil, fmt.Errorf("cert: %v", err)
		}
		der = blk.Bytes
	}
	return &req, der, nil
}

// AgentView is an agent as the API shows it.
type AgentView struct {
	ID           string     `json:"id"`
	Addr         string     `json:"addr"`
	Policy       string     `json:"policy"`
	State        string     `json:"state"`
	Kind         string     `json:"kind,omitempty"`
	Reasons      []string   `json:"reasons,omitempty"`
	Attestations int64      `json:"attestations"`
	LastAttested *time.Time `json:"last_attested,omitempty"`
	LastTrusted  *time.Time `json:"last_trusted,omitempty"`
	LogSource    string     `json:"log_source"`
	LogPCR       int        `json:"log_pcr"`
	LogOffset    int64      `json:"log_offset"`
	CertSHA256   string     `json:"cert_sha256"`
	// Replica holds the agent's lease when replicas share the store;
	// LeaseUntil is when it lapses (past: no replica attests the agent).
	Replica    string         `json:"replica,omitempty"`
	LeaseUntil *time.Time     `json:"lease_until,omitempty"`
	AKPublic   []byte         `json:"ak_public"` // TPMT_PUBLIC
	EKPublic   []byte         `json:"ek_public"` // TPMT_PUBLIC
	EKCert     []byte         `json:"ek_cert,omitempty"`
	Gap        *store.Gap     `json:"gap,omitempty"` // a reboot after a gap, until acknowledged
	History    []store.Result `json:"history,omitempty"`
	Timeline   []Notification `json:"timeline,omitempty"`
}

func viewOf(a *store.Agent) *AgentView {
	sum := sha256.Sum256(a.CertDER)
	v := &AgentView{ID: a.ID, Addr: a.Addr, Policy: a.Policy, State: a.State, Kind: a.Kind, Reasons: a.Reasons,
		Attestations: a.Attestations, LogSource: a.LogSource, LogPCR: a.LogPCR, LogOffset: a.Progress.LogOffset,
		CertSHA256: hex.EncodeToString(sum[:]), AKPublic: a.AKPublic, EKPublic: a.EKPublic, EKCert: a.EKCert, Gap: a.Gap}
	if !a.LastAttested.IsZero() {
		t := a.LastAttested
		v.LastAttested = &t
	}
	if !a.Lease.Until.IsZero() {
		t := a.Lease.Until
		v.Replica, v.LeaseUntil = a.Lease.Replica, &t
	}
	if !a.LastTrusted.IsZero() {
		t := a.LastTrusted
		v.LastTrusted = &t
	}
	return v
}

// PolicyView answers PUT /v1/policies/{name}.
type PolicyView struct {
	Name  string `json:"name"`
	Paths int    `json:"paths"`
}

// NewAPI returns the operator API handler. token must be non-empty;
// every request must carry "Authorization: Bearer <token>".
func NewAPI(v *Verifier, token string) (http.Handler, error) {
	if len(token) < 16 {
		return nil, errors.New("api token must have at least 16 characters")
	}
	a := &api{v: v, token: []byte(token)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agents", a.listAgents)
	mux.HandleFunc("POST /v1/agents", a.addAgent)
	mux.HandleFunc("GET /v1/agents/{id}", a.showAgent)
	mux.HandleFunc("DELETE /v1/agents/{id}", a.removeAgent)
	mux.HandleFunc("POST /v1/agents/{id}/ack", a.ackAgent)
	mux.HandleFunc("GET /v1/agents/{id}/ear", a.agentEAR)
	mux.HandleFunc("POST /v1/agents/{id}/reactivate", a.reactivateAgent)
	mux.HandleFunc("GET /v1/ear-key", a.earKey)
	mux.HandleFunc("GET /v1/policies", a.listPolicies)
	mux.HandleFunc("PUT /v1/policies/{name}", a.putPolicy)
	mux.HandleFunc("GET /v1/policies/{name}", a.getPolicy)
	return a.auth(mux), nil
}

type api struct {
	v     *Verifier
	token []byte
}

func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), a.token) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			apiError(w, http.StatusUnauthorized, errors.New("missing or wrong api token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func apiError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		apiError(w, http.StatusNotFound, err)
	case errors.Is(err, store.ErrExists):
		apiError(w, http.StatusConflict, err)
	default:
		apiError(w, http.StatusInternalServerError, err)
	}
}

func (a *api) listAgents(w http.ResponseWriter, r *http.Request) {
	agents, err := a.v.o.Store.ListAgents(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	out := make([]*AgentView, 0, len(agents))
	for _, ag := range agents {
		out = append(out, viewOf(ag))
	}
	reply(w, http.StatusOK, out)
}

func (a *api) addAgent(w http.ResponseWriter, r *http.Request) {
	req, der, err := DecodeAddAgent(http.MaxBytesReader(w, r.Body, maxAddAgent))
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*a.v.o.Timeout)
	defer cancel()
	ag, err := a.v.Enroll(ctx, EnrollRequest{ID: req.ID, Addr: req.Addr, Policy: req.Policy, CertDER: der})
	var se *SecurityError
	switch {
	case errors.As(err, &se):
		apiError(w, http.StatusForbidden, err)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExists):
		storeError(w, err)
	case err != nil:
		apiError(w, http.StatusBadGateway, err)
	default:
		reply(w, http.StatusCreated, viewOf(ag))
	}
}

func (a *api) showAgent(w http.ResponseWriter, r *http.Request) {
	ag, err := a.v.o.Store.GetAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	v := viewOf(ag)
	if v.History, err = a.v.o.Store.History(r.Context(), ag.ID, historyShow); err != nil {
		storeError(w, err)
		return
	}
	if v.Timeline, err = a.v.Timeline(r.Context(), ag); err != nil {
		storeError(w, err)
		return
	}
	reply(w, http.StatusOK, v)
}

// agentEAR signs the agent's current result (on request: attestations
// do not sign).
func (a *api) agentEAR(w http.ResponseWriter, r *http.Request) {
	ag, err := a.v.o.Store.GetAgent(r.Context(), r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	res := a.v.EAR(ag, a.v.o.Now())
	// A relying party's nonce (8-64 base64url characters) binds the
	// result to its request.
	if res.Nonce = r.URL.Query().Get("nonce"); res.Nonce != "" && !validNonce(res.Nonce) {
		apiError(w, http.StatusBadRequest, errors.New("nonce: want 8-64 base64url characters"))
		return
	}
	tok, err := ear.Sign(res, a.v.o.EARKey, a.v.o.Rand)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", EARMediaType)
	io.WriteString(w, tok)
}

func (a *api) earKey(w http.ResponseWriter, r *http.Request) {
	j, err := ear.PublicJWK(a.v.EARKey())
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk+json")
	json.NewEncoder(w).Encode(j)
}

// ReactivateRequest is the body of POST /v1/agents/{id}/reactivate.
type ReactivateRequest struct {
	Note string `json:"note,omitempty"`
}

func (a *api) reactivateAgent(w http.ResponseWriter, r *http.Request) {
	var req ReactivateRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4*MaxNote))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && err != io.EOF {
		apiError(w, http.StatusBadRequest, fmt.Errorf("reactivate request: %v", err))
		return
	}
	ag, err := a.v.Reactivate(r.Context(), r.PathValue("id"), req.Note)
	switch {
	case errors.Is(err, ErrNotFailed):
		apiError(w, http.StatusConflict, err)
		return
	case errors.Is(err, store.ErrNotFound):
		storeError(w, err)
		return
	case errors.Is(err, ErrNoteTooLong):
		apiError(w, http.StatusBadRequest, err)
		return
	case err != nil:
		storeError(w, err)
		return
	}
	reply(w, http.StatusOK, viewOf(ag))
}

func (a *api) removeAgent(w http.ResponseWriter, r *http.Request) {
	if err := a.v.Remove(r.Context(), r.PathValue("id")); err != nil {
		storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) ackAgent(w http.ResponseWriter, r *http.Request) {
	err := a.v.Acknowledge(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNoGap), errors.Is(err, ErrNotAttested), errors.Is(err, ErrNotHolder):
		apiError(w, http.StatusConflict, err)
	case err != nil:
		storeError(w, err)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (a *api) listPolicies(w http.ResponseWriter, r *http.Request) {
	names, err := a.v.o.Store.ListPolicies(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	reply(w, http.StatusOK, names)
}

func (a *api) putPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" || len(name) > 128 {
		apiError(w, http.StatusBadRequest, errors.New("policy name must have 1-128 characters"))
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rtpolicy.MaxSize))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, err)
		return
	}
	if IsBootPolicy(b) {
		_, err := a.v.PutBootPolicy(r.Context(), name, b)
		switch {
		case errors.Is(err, bootpolicy.ErrFormat):
			apiError(w, http.StatusBadRequest, err)
		case err != nil:
			storeError(w, err)
		default:
			reply(w, http.StatusOK, &PolicyView{Name: name})
		}
		return
	}
	c, err := a.v.PutPolicy(r.Context(), name, b)
	if errors.Is(err, rtpolicy.ErrFormat) {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if errors.Is(err, rtpolicy.ErrUnsigned) || errors.Is(err, rtpolicy.ErrBadPolicySig) || errors.Is(err, rtpolicy.ErrUnknownSigner) {
		apiError(w, http.StatusForbidden, err)
		return
	}
	if err != nil {
		storeError(w, err)
		return
	}
	reply(w, http.StatusOK, &PolicyView{Name: name, Paths: len(c.Paths())})
}

func (a *api) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := a.v.o.Store.GetPolicy(r.Context(), r.PathValue("name"))
	if err != nil {
		storeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(p.Doc)
}

func validNonce(n string) bool {
	if len(n) < 8 || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
