// SPDX-License-Identifier: Apache-2.0

package rtpolicy

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/strictjson"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/sig"
)

// Signed policies. A signature is an IMA-style version 2 signature (the
// sig package's, with the signer's keyid) over the SHA-256 digest of the
// policy's canonical bytes (CanonicalBytes): reformatting or reordering
// the JSON does not break it, changing what it accepts does.
//
// Two forms:
//   - an envelope: the canonical policy with one more top-level member,
//     "sig": "<base64 signature>"; OpenSigned checks and strips it;
//   - a detached signature: a file holding the base64 signature alone,
//     beside an unchanged policy file (VerifyDetached).

// SigField is the envelope's signature member.
const SigField = "sig"

// Errors of signature checks.
var (
	ErrUnsigned      = errors.New("runtime policy is not signed")
	ErrBadPolicySig  = errors.New("runtime policy signature does not verify")
	ErrUnknownSigner = errors.New("runtime policy signed by a key not trusted")
)

func policyDigest(p Policy) ([]byte, []byte, error) {
	b, err := CanonicalBytes(p)
	if err != nil {
		return nil, nil, err
	}
	d := sha256.Sum256(b)
	return b, d[:], nil
}

// SignDetached returns the canonical bytes of p and a detached signature
// over them (base64 text, a newline at the end).
func SignDetached(p Policy, signer crypto.Signer) (canonical, signature []byte, err error) {
	b, d, err := policyDigest(p)
	if err != nil {
		return nil, nil, err
	}
	id, err := sig.KeyID(signer.Public())
	if err != nil {
		return nil, nil, err
	}
	s, err := sig.SignDigest(signer, id, digest.SHA256, d)
	if err != nil {
		return nil, nil, err
	}
	return b, []byte(base64.StdEncoding.EncodeToString(s.Marshal()) + "\n"), nil
}

// Sign returns the envelope: the canonical policy with its signature.
func Sign(p Policy, signer crypto.Signer) ([]byte, error) {
	b, s, err := SignDetached(p, signer)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m[SigField], _ = json.Marshal(strings.TrimSpace(string(s)))
	return json.Marshal(m)
}

// verify checks a base64 signature over p with a key of keys; it returns
// the signer's keyid.
func verify(p Policy, sigText []byte, keys *sig.Keyring) (uint32, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
	if err != nil {
		return 0, fmt.Errorf("%w: signature is not base64: %v", ErrBadPolicySig, err)
	}
	s, err := label.ParseSignature(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadPolicySig, err)
	}
	if s.Algo != digest.SHA256 || s.Version != 2 || s.Type != label.TypeDigsig {
		return 0, fmt.Errorf("%w: a %s version %d signature with %s (want a version 2 signature with sha256)", ErrBadPolicySig, s.Type, s.Version, s.Algo)
	}
	_, d, err := policyDigest(p)
	if err != nil {
		return 0, err
	}
	certs := keys.Lookup(s.KeyID)
	if len(certs) == 0 {
		return 0, fmt.Errorf("%w: keyid %08x", ErrUnknownSigner, s.KeyID)
	}
	for _, c := range certs {
		if sig.VerifyDigest(c.PublicKey, s.Algo, d, s.Sig) == nil {
			return s.KeyID, nil
		}
	}
	return 0, fmt.Errorf("%w with the certificate for keyid %08x (changed after signing, or signed by another key)", ErrBadPolicySig, s.KeyID)
}

// decodeStrict parses a policy document without its signature member.
func decodeStrict(b []byte) (Policy, error) {
	var p Policy
	if err := strictjson.Decode(b, &p); err != nil {
		return Policy{}, ferr("%v", err)
	}
	return p, nil
}

// SplitEnvelope separates an envelope into the policy document (JSON,
// without "sig") and the signature; sig is nil when there is none.
func SplitEnvelope(b []byte) (doc []byte, signature []byte, err error) {
	if len(b) > MaxSize {
		return nil, nil, ferr("%d bytes (at most %d)", len(b), MaxSize)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, ferr("%v", err)
	}
	rawSig, ok := m[SigField]
	if !ok {
		return b, nil, nil
	}
	var s string
	if err := json.Unmarshal(rawSig, &s); err != nil {
		return nil, nil, ferr("sig: %v", err)
	}
	delete(m, SigField)
	doc, err = json.Marshal(m)
	if err != nil {
		return nil, nil, ferr("%v", err)
	}
	return doc, []byte(s), nil
}

// OpenSigned checks an envelope with keys and returns the policy, its
// plain document (the canonical JSON without the signature, what
// Parse reads) and the signer's keyid. An unsigned document is
// ErrUnsigned; a signature that does not verify, ErrBadPolicySig; a
// signer not in keys, ErrUnknownSigner.
func OpenSigned(b []byte, keys *sig.Keyring) (*Compiled, []byte, uint32, error) {
	doc, s, err := SplitEnvelope(b)
	if err != nil {
		return nil, nil, 0, err
	}
	if s == nil {
		return nil, nil, 0, ErrUnsigned
	}
	p, err := decodeStrict(doc)
	if err != nil {
		return nil, nil, 0, err
	}
	id, err := verify(p, s, keys)
	if err != nil {
		return nil, nil, 0, err
	}
	canon, err := CanonicalBytes(p)
	if err != nil {
		return nil, nil, 0, err
	}
	c, err := Parse(canon)
	return c, canon, id, err
}

// VerifyDetached checks a detached signature over the policy document b.
func VerifyDetached(b, signature []byte, keys *sig.Keyring) (*Compiled, uint32, error) {
	if len(bytes.TrimSpace(signature)) == 0 {
		return nil, 0, ErrUnsigned
	}
	c, err := Parse(b)
	if err != nil {
		return nil, 0, err
	}
	id, err := verify(c.Document(), signature, keys)
	if err != nil {
		return nil, 0, err
	}
	return c, id, nil
}
