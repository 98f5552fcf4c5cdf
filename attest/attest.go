// SPDX-License-Identifier: Apache-2.0

// Package attest is the protocol between intact's attestation agent (in
// intactd) and intact-verifier: the agent API's paths and messages, the
// size limits on each, and strict decoders for everything the verifier
// reads from an agent. It does no I/O beyond reading a given io.Reader.
//
// # Agent API (HTTPS, version 1)
//
//	GET  /v1/enrollment                          -> Enrollment
//	POST /v1/activate     ActivateRequest        -> ActivateResponse
//	GET  /v1/quote?nonce=HEX&pcrs=SEL&offset=N   -> QuoteResponse
//	GET  /v1/log?offset=N                        -> LogChunk
//	GET  /v1/bootlog                             -> the raw TCG boot event log
//
// SEL is "sha256:0,1,2+sha1:10" (banks joined by "+"). The quote response
// carries the measurement list from record offset N (at most
// MaxLogChunk bytes; More tells that records remain, fetched with
// /v1/log). The agent quotes first and reads the list after, so the list
// always reaches at least as far as the quoted PCR.
//
// No agent endpoint changes state: activation is a computation the TPM
// does only for credentials bound to this agent's own AK and EK.
package attest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/strictjson"
)

// API paths of the agent.
const (
	PathEnrollment = "/v1/enrollment"
	PathActivate   = "/v1/activate"
	PathQuote      = "/v1/quote"
	PathLog        = "/v1/log"
	PathBootLog    = "/v1/bootlog"
)

// Size limits. Every message is read through a limit; anything larger is
// an error, not a truncation.
const (
	MaxEnrollment = 64 << 10
	MaxActivate   = 16 << 10
	MaxQuote      = 64 << 10 // a quote response without its log chunk
	MaxLogChunk   = 4 << 20  // measurement list bytes per response
	MaxBootLog    = 1 << 20  // TCG event logs are tens of KiB
	MaxResponse   = 6 << 20  // any response body, base64 included
	NonceSize     = 32       // bytes of a verifier nonce
	MaxEKChain    = 8        // certificates of the EK chain in an enrollment
	maxNonce      = 64       // what a TPM accepts
	maxCredential = 4 << 10
)

// ErrMessage is wrapped by every decoding error.
var ErrMessage = errors.New("malformed message")

func merr(what string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMessage, what, fmt.Sprintf(format, args...))
}

// Log sources an agent serves.
const (
	LogIntact = "intact" // intact's own measurement list (intactd)
	LogIMA    = "ima"    // the kernel's IMA list
)

// Enrollment is what an agent tells a verifier at enrollment.
type Enrollment struct {
	EKPublic []byte `json:"ek_public"`         // TPMT_PUBLIC of the EK
	EKCert   []byte `json:"ek_cert,omitempty"` // DER EK certificate, if the TPM has one
	AKPublic []byte `json:"ak_public"`         // TPMT_PUBLIC of the AK
	AKName   []byte `json:"ak_name"`           // TPM name of the AK
	Log      string `json:"log"`               // LogIntact or LogIMA
	LogPCR   int    `json:"log_pcr"`           // the PCR the list extends

	// EKChain are further certificates from the TPM's EK certificate
	// chain NV indices (intermediates; at most MaxEKChain).
	EKChain [][]byte `json:"ek_chain,omitempty"`
}

// ActivateRequest carries a credential made for the agent's EK and AK
// name (TPM2_MakeCredential's output).
type ActivateRequest struct {
	Credential []byte `json:"credential"` // TPM2B_ID_OBJECT contents
	Secret     []byte `json:"secret"`     // TPM2B_ENCRYPTED_SECRET contents
}

// ActivateResponse proves the agent recovered the credential: Proof is
// ActivationProof(credential, the agent's TLS certificate).
type ActivateResponse struct {
	Proof []byte `json:"proof"`
}

// ActivationProof binds a recovered credential to the TLS certificate
// the agent serves: HMAC-SHA256(credential, label || SHA-256(cert)). A
// machine in the middle of the enrollment connection cannot produce it
// for its own certificate without the TPM.
func ActivationProof(credential, certDER []byte) []byte {
	sum := sha256.Sum256(certDER)
	m := hmac.New(sha256.New, credential)
	m.Write([]byte("intact activate v1\x00"))
	m.Write(sum[:])
	return m.Sum(nil)
}

// QuoteResponse is a quote, the PCR values it covers, and the
// measurement list from the requested offset.
type QuoteResponse struct {
	Attest    []byte                    `json:"attest"`    // TPMS_ATTEST
	Signature []byte                    `json:"signature"` // TPMT_SIGNATURE
	PCRs      map[string]map[int][]byte `json:"pcrs"`      // bank -> index -> value
	Log       *LogChunk                 `json:"log,omitempty"`
}

// LogChunk is a run of measurement-list records in the binary format
// (SHA-1 template digests, little-endian), from record Start on.
type LogChunk struct {
	Source string `json:"source"` // LogIntact or LogIMA
	Start  int64  `json:"start"`  // index of the first record in Data
	Count  int64  `json:"count"`  // records in Data
	Data   []byte `json:"data"`
	More   bool   `json:"more"` // records after these exist
}

// decode reads at most max bytes of JSON into v, strictly.
func decode(r io.Reader, max int64, what string, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return decodeBytes(b, max, what, v)
}

func decodeBytes(b []byte, max int64, what string, v any) error {
	if int64(len(b)) > max {
		return merr(what, "more than %d bytes", max)
	}
	if err := strictjson.Decode(b, v); err != nil {
		return merr(what, "%v", err)
	}
	return nil
}

// DecodeEnrollment reads and checks an Enrollment.
func DecodeEnrollment(r io.Reader) (*Enrollment, error) {
	var e Enrollment
	if err := decode(r, MaxEnrollment, "enrollment", &e); err != nil {
		return nil, err
	}
	switch {
	case len(e.EKPublic) == 0 || len(e.AKPublic) == 0 || len(e.AKName) == 0:
		return nil, merr("enrollment", "missing ek or ak")
	case e.Log != LogIntact && e.Log != LogIMA:
		return nil, merr("enrollment", "unknown log source %q", e.Log)
	case e.LogPCR < 0 || e.LogPCR > 23:
		return nil, merr("enrollment", "log pcr %d", e.LogPCR)
	case len(e.EKChain) > MaxEKChain:
		return nil, merr("enrollment", "%d ek chain certificates (at most %d)", len(e.EKChain), MaxEKChain)
	}
	return &e, nil
}

// DecodeActivateRequest reads an ActivateRequest (agent side).
func DecodeActivateRequest(r io.Reader) (*ActivateRequest, error) {
	var a ActivateRequest
	if err := decode(r, MaxActivate, "activate request", &a); err != nil {
		return nil, err
	}
	if len(a.Credential) == 0 || len(a.Secret) == 0 || len(a.Credential) > maxCredential || len(a.Secret) > maxCredential {
		return nil, merr("activate request", "credential or secret of bad size")
	}
	return &a, nil
}

// DecodeActivateResponse reads an ActivateResponse.
func DecodeActivateResponse(r io.Reader) (*ActivateResponse, error) {
	var a ActivateResponse
	if err := decode(r, MaxActivate, "activate response", &a); err != nil {
		return nil, err
	}
	if len(a.Proof) != sha256.Size {
		return nil, merr("activate response", "proof of %d bytes", len(a.Proof))
	}
	return &a, nil
}

// DecodeQuoteResponse reads a QuoteResponse.
func DecodeQuoteResponse(r io.Reader) (*QuoteResponse, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer putBuf(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r, MaxResponse+1)); err != nil {
		return nil, fmt.Errorf("reading quote response: %w", err)
	}
	return decodeQuoteResponse(buf.Bytes())
}

// bufPool holds read buffers of quote responses (one per attestation).
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 { // keep no buffer of a large list chunk
		bufPool.Put(b)
	}
}

func decodeQuoteResponse(b []byte) (*QuoteResponse, error) {
	if len(b) > MaxResponse {
		return nil, merr("quote response", "more than %d bytes", MaxResponse)
	}
	q, ok := fastQuoteResponse(b)
	if !ok {
		q = &QuoteResponse{}
		if err := decodeBytes(b, MaxResponse, "quote response", q); err != nil {
			return nil, err
		}
	}
	if len(q.Attest) == 0 || len(q.Signature) == 0 || len(q.Attest) > MaxQuote || len(q.Signature) > MaxQuote {
		return nil, merr("quote response", "missing or oversized quote")
	}
	if err := checkPCRValues(q.PCRs); err != nil {
		return nil, err
	}
	if q.Log != nil {
		if err := q.Log.check(); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// DecodeLogChunk reads a LogChunk.
func DecodeLogChunk(r io.Reader) (*LogChunk, error) {
	var c LogChunk
	if err := decode(r, MaxResponse, "log chunk", &c); err != nil {
		return nil, err
	}
	return &c, c.check()
}

func (c *LogChunk) check() error {
	switch {
	case c.Source != LogIntact && c.Source != LogIMA:
		return merr("log chunk", "unknown source %q", c.Source)
	case c.Start < 0 || c.Count < 0:
		return merr("log chunk", "negative start or count")
	case len(c.Data) > MaxLogChunk:
		return merr("log chunk", "%d bytes (at most %d)", len(c.Data), MaxLogChunk)
	case c.Count == 0 && len(c.Data) != 0:
		return merr("log chunk", "data without records")
	}
	return nil
}

// Banks names the PCR banks of the protocol (by the kernel's names).
var Banks = map[string]digest.Algo{"sha1": digest.SHA1, "sha256": digest.SHA256, "sha384": digest.SHA384, "sha512": digest.SHA512}

// BankName returns the protocol name of a bank ("" if it is not one).
func BankName(h digest.Algo) string {
	for n, b := range Banks {
		if b == h {
			return n
		}
	}
	return ""
}

// ParsePCRValues checks the PCR values of a response (known banks,
// indexes 0-23, values of the bank's size) and converts them.
func ParsePCRValues(in map[string]map[int][]byte) (digest.PCRs, error) {
	if err := checkPCRValues(in); err != nil {
		return nil, err
	}
	out := make(digest.PCRs, len(in))
	for name, vals := range in {
		out[Banks[name]] = vals
	}
	return out, nil
}

// checkPCRValues is ParsePCRValues's check, without the conversion.
func checkPCRValues(in map[string]map[int][]byte) error {
	if len(in) == 0 {
		return merr("pcr values", "none")
	}
	for name, vals := range in {
		h, ok := Banks[name]
		if !ok {
			return merr("pcr values", "unknown bank %q", name)
		}
		for i, v := range vals {
			if i < 0 || i > 23 || len(v) != h.Size() {
				return merr("pcr values", "bank %s pcr %d: %d bytes", name, i, len(v))
			}
		}
	}
	return nil
}

// Selection is a PCR selection per bank.
type Selection map[digest.Algo][]int

// String formats s for the pcrs query parameter: "sha256:0,1+sha1:10".
func (s Selection) String() string {
	var parts []string
	for _, h := range []digest.Algo{digest.SHA1, digest.SHA256, digest.SHA384, digest.SHA512} {
		pcrs, ok := s[h]
		if !ok {
			continue
		}
		nums := make([]string, len(pcrs))
		for i, p := range pcrs {
			nums[i] = strconv.Itoa(p)
		}
		parts = append(parts, BankName(h)+":"+strings.Join(nums, ","))
	}
	return strings.Join(parts, "+")
}

// ParseSelection parses the pcrs query parameter (agent side).
func ParseSelection(s string) (Selection, error) {
	if len(s) > 512 {
		return nil, merr("pcr selection", "too long")
	}
	out := Selection{}
	for _, part := range strings.Split(s, "+") {
		name, list, ok := strings.Cut(part, ":")
		h, known := Banks[name]
		if !ok || !known {
			return nil, merr("pcr selection", "bad bank in %q", part)
		}
		if _, dup := out[h]; dup {
			return nil, merr("pcr selection", "bank %s twice", name)
		}
		var pcrs []int
		for _, f := range strings.Split(list, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 0 || n > 23 || f != strconv.Itoa(n) || slices.Contains(pcrs, n) {
				return nil, merr("pcr selection", "bad pcr %q", f)
			}
			pcrs = append(pcrs, n)
		}
		slices.Sort(pcrs)
		out[h] = pcrs
	}
	return out, nil
}

// ParseNonce parses the nonce query parameter (agent side): hex, 8-64
// bytes.
func ParseNonce(s string) ([]byte, error) {
	if len(s) < 16 || len(s) > 2*maxNonce {
		return nil, merr("nonce", "%d hex digits (16-%d)", len(s), 2*maxNonce)
	}
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, merr("nonce", "not hex")
		}
		b[i] = byte(v)
	}
	if len(s)%2 != 0 {
		return nil, merr("nonce", "odd length")
	}
	return b, nil
}

// ParseOffset parses a record offset query parameter.
func ParseOffset(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || s != strconv.FormatInt(n, 10) {
		return 0, merr("offset", "%q", s)
	}
	return n, nil
}
