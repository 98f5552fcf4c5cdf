// SPDX-License-Identifier: Apache-2.0

// Package ear encodes, signs and verifies attestation results in the
// shape of the IETF RATS EAR (EAT Attestation Results,
// draft-ietf-rats-ear): a JWT (JWS compact serialization, ES256) whose
// claims are eat_profile, iat, ear.verifier-id and submods, each submod
// an appraisal with ear.status and an AR4SI trustworthiness vector
// (draft-ietf-rats-ar4si), plus intact's own ear.intact.* claims.
//
// It is pure (no I/O) and uses only the standard library. Untrusted
// tokens go through Verify (or ParseUnverified, for display), which
// never panic and return errors matching ErrMalformed, ErrAlgorithm,
// ErrSignature or ErrClaims.
package ear

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// Profile is the eat_profile of EAR.
const Profile = "tag:github.com,2023:veraison/ear"

// MaxToken bounds a token Verify accepts.
const MaxToken = 256 << 10

// MaxSubmods bounds the submods of a result.
const MaxSubmods = 1024

// Conditions callers branch on (errors.Is).
var (
	ErrMalformed = errors.New("ear: malformed token")
	ErrAlgorithm = errors.New("ear: unsupported algorithm")
	ErrSignature = errors.New("ear: signature does not verify")
	ErrClaims    = errors.New("ear: invalid claims")
	ErrKey       = errors.New("ear: unsupported key")
)

// Status is an EAR trust tier (ear.status).
type Status string

// The trust tiers, from best to worst (none is "no assertion").
const (
	StatusNone            Status = "none"
	StatusAffirming       Status = "affirming"
	StatusWarning         Status = "warning"
	StatusContraindicated Status = "contraindicated"
)

func (s Status) rank() int {
	switch s {
	case StatusNone:
		return 0
	case StatusAffirming:
		return 1
	case StatusWarning:
		return 2
	case StatusContraindicated:
		return 3
	}
	return -1
}

// Valid reports whether s is one of the four tiers.
func (s Status) Valid() bool { return s.rank() >= 0 }

// Worse returns the worse of two tiers (contraindicated > warning >
// affirming > none).
func Worse(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// TierOf is the trust tier of one AR4SI claim value: |v| <= 1 none,
// 2..31 affirming, 32..95 warning, 96..127 contraindicated (negative
// values mirror positive ones).
func TierOf(v int8) Status {
	a := int(v)
	if a < 0 {
		a = -a
	}
	switch {
	case a <= 1:
		return StatusNone
	case a <= 31:
		return StatusAffirming
	case a <= 95:
		return StatusWarning
	}
	return StatusContraindicated
}

// AR4SI claim values intact uses.
const (
	NoClaim            int8 = 0
	UnexpectedEvidence int8 = 1
	// instance-identity
	IdentityTrustworthy   int8 = 2
	IdentityUntrustworthy int8 = 96
	IdentityUnrecognized  int8 = 97
	// configuration
	ConfigApproved        int8 = 2
	ConfigContraindicated int8 = 96
	// executables
	ExecApprovedRuntime int8 = 2
	ExecApprovedBoot    int8 = 3
	ExecUnrecognized    int8 = 33
	ExecContraindicated int8 = 96
	FileSystemApproved  int8 = 2
	// hardware: the TPM's endorsement key is trusted (its certificate
	// chains to a maker's CA, or the operator allowlisted it)
	HardwareGenuine        int8 = 2
	FileSystemUnrecognized int8 = 32
	// CryptoValidationFailed: the evidence's cryptographic validation
	// failed (any claim).
	CryptoValidationFailed int8 = 99
)

// TrustVector is the AR4SI trustworthiness vector; 0 is "no claim" and
// is omitted.
type TrustVector struct {
	InstanceIdentity int8 `json:"instance-identity,omitempty"`
	Configuration    int8 `json:"configuration,omitempty"`
	Executables      int8 `json:"executables,omitempty"`
	FileSystem       int8 `json:"file-system,omitempty"`
	Hardware         int8 `json:"hardware,omitempty"`
	RuntimeOpaque    int8 `json:"runtime-opaque,omitempty"`
	StorageOpaque    int8 `json:"storage-opaque,omitempty"`
	SourcedData      int8 `json:"sourced-data,omitempty"`
}

// Worst is the worst tier among the vector's claims (none if it claims
// nothing).
func (v *TrustVector) Worst() Status {
	s := StatusNone
	if v == nil {
		return s
	}
	for _, c := range []int8{v.InstanceIdentity, v.Configuration, v.Executables, v.FileSystem,
		v.Hardware, v.RuntimeOpaque, v.StorageOpaque, v.SourcedData} {
		s = Worse(s, TierOf(c))
	}
	return s
}

// Appraisal is one submod: the verifier's appraisal of one attester (for
// intact, one agent).
type Appraisal struct {
	Status   Status       `json:"ear.status"`
	Vector   *TrustVector `json:"ear.trustworthiness-vector,omitempty"`
	PolicyID string       `json:"ear.appraisal-policy-id,omitempty"`

	// intact's extensions.
	State        string   `json:"ear.intact.state,omitempty"`         // enrolled, trusted, failed
	Kind         string   `json:"ear.intact.failure-kind,omitempty"`  // security or operational
	Reason       string   `json:"ear.intact.reason,omitempty"`        // the security failure reason (quote-nonce, policy, ...)
	Reasons      []string `json:"ear.intact.reasons,omitempty"`       // the failure reasons in full
	Paths        []string `json:"ear.intact.paths,omitempty"`         // files that broke the runtime policy
	Attestations int64    `json:"ear.intact.attestations,omitempty"`  // attestations so far
	LastAttested int64    `json:"ear.intact.last-attested,omitempty"` // unix seconds
	LogOffset    int64    `json:"ear.intact.log-offset,omitempty"`    // measurement-list records verified
}

// VerifierID names the verifier that made the result (ear.verifier-id).
type VerifierID struct {
	Developer string `json:"developer"`
	Build     string `json:"build"`
}

// Result is an EAR claims set.
type Result struct {
	Profile    string               `json:"eat_profile"`
	IssuedAt   int64                `json:"iat"`
	VerifierID VerifierID           `json:"ear.verifier-id"`
	Nonce      string               `json:"eat_nonce,omitempty"`
	Submods    map[string]Appraisal `json:"submods"`
}

// Validate checks the claims a result must have.
func (r *Result) Validate() error {
	if r.Profile != Profile {
		return fmt.Errorf("%w: eat_profile %q, want %q", ErrClaims, r.Profile, Profile)
	}
	if r.IssuedAt <= 0 {
		return fmt.Errorf("%w: no iat", ErrClaims)
	}
	if r.VerifierID.Developer == "" || r.VerifierID.Build == "" {
		return fmt.Errorf("%w: ear.verifier-id needs developer and build", ErrClaims)
	}
	if r.Nonce != "" && (len(r.Nonce) < 8 || len(r.Nonce) > 64) {
		return fmt.Errorf("%w: eat_nonce of %d characters, want 8-64", ErrClaims, len(r.Nonce))
	}
	if len(r.Submods) == 0 || len(r.Submods) > MaxSubmods {
		return fmt.Errorf("%w: %d submods, want 1-%d", ErrClaims, len(r.Submods), MaxSubmods)
	}
	for name, a := range r.Submods {
		if name == "" {
			return fmt.Errorf("%w: a submod without a name", ErrClaims)
		}
		if !a.Status.Valid() {
			return fmt.Errorf("%w: submod %q: ear.status %q", ErrClaims, name, a.Status)
		}
	}
	return nil
}

var b64 = base64.RawURLEncoding.Strict()

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// Sign returns r as a JWT signed with ES256 by key (a P-256 key); the
// header's kid is the key's JWK thumbprint. rnd may be nil
// (crypto/rand).
func Sign(r *Result, key *ecdsa.PrivateKey, rnd io.Reader) (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	if key == nil || key.Curve != elliptic.P256() {
		return "", fmt.Errorf("%w: want an ECDSA P-256 key", ErrKey)
	}
	kid, err := Thumbprint(&key.PublicKey)
	if err != nil {
		return "", err
	}
	h, err := json.Marshal(header{Alg: "ES256", Typ: "JWT", Kid: kid})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	d := sha256.Sum256([]byte(input))
	if rnd == nil {
		rnd = randReader
	}
	rr, ss, err := ecdsa.Sign(rnd, key, d[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig), nil
}

// parse splits and decodes a token without checking its signature.
func parse(token string) (h header, claims []byte, input string, sig []byte, err error) {
	if len(token) > MaxToken {
		return h, nil, "", nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(token), MaxToken)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return h, nil, "", nil, fmt.Errorf("%w: %d parts, want 3", ErrMalformed, len(parts))
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return h, nil, "", nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if claims, err = b64.DecodeString(parts[1]); err != nil {
		return h, nil, "", nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if sig, err = b64.DecodeString(parts[2]); err != nil {
		return h, nil, "", nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.DisallowUnknownFields() // no crit, jku, x5u...: nothing we would have to honour
	if err := dec.Decode(&h); err != nil || dec.More() {
		return h, nil, "", nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if h.Alg != "ES256" {
		return h, nil, "", nil, fmt.Errorf("%w: %q (want ES256)", ErrAlgorithm, h.Alg)
	}
	if h.Typ != "" && h.Typ != "JWT" {
		return h, nil, "", nil, fmt.Errorf("%w: typ %q", ErrMalformed, h.Typ)
	}
	return h, claims, parts[0] + "." + parts[1], sig, nil
}

func decodeClaims(b []byte) (*Result, error) {
	var r Result
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrClaims)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Verify checks token's ES256 signature with pub and returns its claims,
// which must be a valid EAR (Validate).
func Verify(token string, pub *ecdsa.PublicKey) (*Result, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: want an ECDSA P-256 key", ErrKey)
	}
	_, claims, input, sig, err := parse(token)
	if err != nil {
		return nil, err
	}
	if len(sig) != 64 {
		return nil, fmt.Errorf("%w: %d-byte signature, want 64", ErrSignature, len(sig))
	}
	d := sha256.Sum256([]byte(input))
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, ErrSignature
	}
	return decodeClaims(claims)
}

// ParseUnverified decodes a token's claims without checking its
// signature: for display only, never for a decision.
func ParseUnverified(token string) (*Result, error) {
	_, claims, _, _, err := parse(token)
	if err != nil {
		return nil, err
	}
	return decodeClaims(claims)
}
