// SPDX-License-Identifier: Apache-2.0

// Package rtpolicy is intact's runtime policy: which measured files (and
// buffers) an attested machine may run, as the verifier evaluates every
// record of a verified measurement list. It is pure: JSON in, compiled
// policy, findings out.
//
// # Format (version 1)
//
//	{
//	  "intact_runtime_policy": 1,
//	  "name": "web-servers",
//	  "release": 7,
//	  "digests": { "/usr/bin/bash": ["sha256:<hex>", "sha1:<hex>"] },
//	  "excludes": ["^/tmp/", "^/var/log/"],
//	  "keys": ["<base64 DER certificate or SubjectPublicKeyInfo>"],
//	  "buffers": { "kexec-cmdline": ["sha256:<hex>"] },
//	  "ignore_violations": false
//	}
//
// A record is judged in this order: excluded paths (Go RE2 regular
// expressions, unanchored unless written with ^/$) pass; the
// boot_aggregate record is left to the verifier (it is checked against
// the quoted boot PCRs, not a list), and so is the boot id record intact's
// lists start with (mlog.IsBootRecord: it measures no file); a violation (ToMToU, open-writers)
// fails unless ignore_violations; a record with an IMA signature (ima-sig)
// passes if the signature verifies over the recorded digest with a key in
// keys, and fails if it does not; otherwise the recorded digest must be
// one of digests[path] (ima-buf records: buffers[name]).
//
// Keylime's runtime policy maps onto this one: its digests (bare hex; the
// algorithm follows from the length), excludes (Python regexes, nearly
// always valid RE2), verification-keys and ima-buf.
package rtpolicy

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/sig"

	"github.com/intactsec/intact/internal/quote"
)

// Version is the format version this package reads and writes.
const Version = 1

// MaxSize bounds a policy document.
const MaxSize = 64 << 20

// ErrFormat is wrapped by every error about a malformed policy.
var ErrFormat = errors.New("malformed runtime policy")

// Policy is the JSON document.
type Policy struct {
	Format           int                 `json:"intact_runtime_policy"`
	Name             string              `json:"name,omitempty"`
	Release          int64               `json:"release,omitempty"`
	Digests          map[string][]string `json:"digests"`
	Excludes         []string            `json:"excludes,omitempty"`
	Keys             []string            `json:"keys,omitempty"`
	Buffers          map[string][]string `json:"buffers,omitempty"`
	IgnoreViolations bool                `json:"ignore_violations,omitempty"`
	// SignatureFallback judges an ima-sig record whose signature does not
	// verify with a policy key by its digest instead (Keylime's rule).
	SignatureFallback bool `json:"signature_fallback,omitempty"`
	// Windows also accept other digests until a time (see window.go).
	Windows []Window `json:"windows,omitempty"`
	// LogPCRs sets the PCR an agent's measurement list must extend, by
	// list source ("ima": the kernel's list, "intact": intact's own); a
	// source not named keeps its default (DefaultLogPCRs). Only PCRs
	// 8-15 are accepted (AllowedLogPCR).
	LogPCRs map[string]int `json:"log_pcrs,omitempty"`
	// BootPolicy names the measured-boot policy (package bootpolicy,
	// put into the verifier under that name) the verifier applies to the
	// boot event log of every agent under this policy; "" none.
	BootPolicy string `json:"boot_policy,omitempty"`
}

// BootPolicy is the name of the measured-boot policy this policy
// requires ("" none).
func (c *Compiled) BootPolicy() string { return c.doc.BootPolicy }

// DefaultLogPCRs are the PCRs measurement lists extend unless a policy
// says otherwise: the kernel's IMA list PCR 10, intact's own list PCR 13.
var DefaultLogPCRs = map[string]int{"ima": 10, "intact": 13}

// AllowedLogPCR reports whether a measurement list may be accepted on
// pcr: only PCRs 8-15. The firmware's PCRs 0-7 hold the boot, PCR 16
// (debug) and 20-23 can be reset by software at any time (a reset
// erases the list's trace), and 17-19 are reset by a dynamic launch.
func AllowedLogPCR(pcr int) bool { return pcr >= 8 && pcr <= 15 }

// LogPCR is the PCR a list of source must extend under this policy
// (false for an unknown source).
func (c *Compiled) LogPCR(source string) (int, bool) {
	if n, ok := c.doc.LogPCRs[source]; ok {
		return n, true
	}
	n, ok := DefaultLogPCRs[source]
	return n, ok
}

// Compiled is a policy ready to evaluate records. It is immutable and
// safe for concurrent use.
type Compiled struct {
	doc      Policy
	digests  map[string]map[string]struct{} // path -> "algo:hex"
	buffers  map[string]map[string]struct{}
	excludes *regexp.Regexp
	keys     map[uint32][]crypto.PublicKey
	windows  []compiledWindow
}

func ferr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// Parse parses and compiles a policy document. Unknown fields are errors.
func Parse(b []byte) (*Compiled, error) {
	if len(b) > MaxSize {
		return nil, ferr("%d bytes (at most %d)", len(b), MaxSize)
	}
	p, err := decodeStrict(b)
	if err != nil {
		return nil, err
	}
	return Compile(p)
}

// Compile checks and compiles p.
func Compile(p Policy) (*Compiled, error) {
	if p.Format != Version {
		return nil, ferr("intact_runtime_policy is %d, want %d", p.Format, Version)
	}
	c := &Compiled{doc: p, keys: map[uint32][]crypto.PublicKey{}}
	var err error
	if c.digests, err = compileDigests("digests", p.Digests); err != nil {
		return nil, err
	}
	if c.buffers, err = compileDigests("buffers", p.Buffers); err != nil {
		return nil, err
	}
	if len(p.Excludes) > 0 {
		parts := make([]string, len(p.Excludes))
		for i, e := range p.Excludes {
			if _, err := regexp.Compile(e); err != nil {
				return nil, ferr("excludes[%d]: %v", i, err)
			}
			parts[i] = "(?:" + e + ")"
		}
		if c.excludes, err = regexp.Compile(strings.Join(parts, "|")); err != nil {
			return nil, ferr("excludes: %v", err)
		}
	}
	for i, k := range p.Keys {
		if err := c.addKey(k); err != nil {
			return nil, ferr("keys[%d]: %v", i, err)
		}
	}
	if c.windows, err = compileWindows(p.Windows); err != nil {
		return nil, err
	}
	for src, pcr := range p.LogPCRs {
		if _, ok := DefaultLogPCRs[src]; !ok {
			return nil, ferr("log_pcrs: unknown list source %q (ima or intact)", src)
		}
		if !AllowedLogPCR(pcr) {
			return nil, ferr("log_pcrs: %s on pcr %d: only pcrs 8-15 (never the firmware's 0-7, nor the resettable 16-23)", src, pcr)
		}
	}
	return c, nil
}

func compileDigests(field string, m map[string][]string) (map[string]map[string]struct{}, error) {
	out := make(map[string]map[string]struct{}, len(m))
	for path, list := range m {
		if path == "" {
			return nil, ferr("%s: empty path", field)
		}
		set := make(map[string]struct{}, len(list))
		for _, d := range list {
			norm, err := NormalizeDigest(d)
			if err != nil {
				return nil, ferr("%s[%q]: %v", field, path, err)
			}
			set[norm] = struct{}{}
		}
		out[path] = set
	}
	return out, nil
}

// NormalizeDigest checks "algo:hex" and returns it in lower case.
func NormalizeDigest(d string) (string, error) {
	algoName, hx, ok := strings.Cut(d, ":")
	if !ok {
		return "", fmt.Errorf("digest %q: want algo:hex", d)
	}
	algo, err := digest.ParseAlgo(algoName)
	if err != nil {
		return "", fmt.Errorf("digest %q: %v", d, err)
	}
	raw, err := hex.DecodeString(hx)
	if err != nil || len(raw) != algo.Size() {
		return "", fmt.Errorf("digest %q: want %d bytes of hex", d, algo.Size())
	}
	return algo.String() + ":" + hex.EncodeToString(raw), nil
}

func (c *Compiled) addKey(b64 string) error {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	if cert, err := x509.ParseCertificate(der); err == nil {
		for _, id := range sig.CertKeyIDs(cert) {
			c.keys[id] = append(c.keys[id], cert.PublicKey)
		}
		return nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return errors.New("neither a certificate nor a public key (DER)")
	}
	id, err := sig.KeyID(pub)
	if err != nil {
		return err
	}
	c.keys[id] = append(c.keys[id], pub)
	return nil
}

// Document returns the policy as parsed.
func (c *Compiled) Document() Policy { return c.doc }

// Marshal returns the canonical JSON of the policy.
func (c *Compiled) Marshal() []byte {
	b, _ := json.Marshal(c.doc)
	return b
}

// Reasons a record fails the policy.
const (
	NotInPolicy    = "not-in-policy"    // no digest listed for the path
	DigestMismatch = "digest-mismatch"  // the path is listed with other digests
	BadSignature   = "bad-signature"    // the ima-sig signature does not verify
	UnknownKey     = "unknown-key"      // no policy key has the signature's keyid
	Violation      = "violation"        // a ToMToU/open-writers violation record
	Unparsable     = "unparsable-entry" // a record whose fields cannot be read
	// TemplateHash: the record's template digest does not match its
	// data (the list was altered). Evaluate does not check it (the
	// verifier checks it when it replays the list); intact policy eval
	// reports it.
	TemplateHash = "template-hash"
)

// Finding is a record that fails the policy.
type Finding struct {
	Index  int64  `json:"index"` // the record's index in the measurement list
	Path   string `json:"path"`
	Digest string `json:"digest,omitempty"`
	Reason string `json:"reason"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s (record %d, %s)", quote.Name(f.Path), f.Reason, f.Index, quote.Text(f.Digest))
}

// Evaluate judges one verified record; index is its place in the list.
// It returns nil when the record passes. Update windows are not applied
// (see EvaluateAt).
func (c *Compiled) Evaluate(index int64, r *mlog.Record) *Finding {
	return c.EvaluateAt(time.Time{}, index, r)
}

// EvaluateAt is Evaluate at the time now (the verifier's clock): the
// digests of update windows that end after now are accepted too. A zero
// now applies no window.
func (c *Compiled) EvaluateAt(now time.Time, index int64, r *mlog.Record) *Finding {
	name, ok := r.Name()
	if !ok {
		return &Finding{Index: index, Reason: Unparsable, Path: "?"}
	}
	if c.excludes != nil && c.excludes.MatchString(name) {
		return nil
	}
	if name == mlog.BootAggregateName || mlog.IsBootRecord(index, r) {
		return nil
	}
	if r.Violation() {
		if c.doc.IgnoreViolations {
			return nil
		}
		return &Finding{Index: index, Path: name, Reason: Violation}
	}
	algoName, d, ok := r.FileDigest()
	if !ok {
		return &Finding{Index: index, Path: name, Reason: Unparsable}
	}
	algoName = recordAlgo(strings.TrimPrefix(strings.TrimPrefix(algoName, "ima:"), "verity:"))
	digest := algoName + ":" + hex.EncodeToString(d)
	f := &Finding{Index: index, Path: name, Digest: digest}
	if s, ok := r.Signature(); ok && len(s) > 0 {
		if !wellFormedSig(s) {
			// Malformed evidence, not a signature that failed: never
			// excused by a listed digest (Keylime refuses the entry).
			f.Reason = Unparsable
			return f
		}
		reason := c.checkSignature(s, algoName, d)
		if reason == "" {
			return nil
		}
		if !c.doc.SignatureFallback {
			f.Reason = reason
			return f
		}
	}
	buf := r.Template == "ima-buf"
	set := c.digests
	if buf {
		set = c.buffers
	}
	allowed, ok := set[name]
	if !ok {
		f.Reason = NotInPolicy
	} else if _, ok := allowed[digest]; !ok {
		f.Reason = DigestMismatch
	} else {
		return nil
	}
	if c.windowAccepts(now, buf, name, digest) {
		return nil
	}
	return f
}

// wellFormedSig: a signature field holds a 9-byte header (type,
// version, hash algorithm, keyid, size) and exactly size bytes of
// signature after it, as Keylime requires of an ima-sig record.
func wellFormedSig(s []byte) bool {
	const hdr = 9
	return len(s) >= hdr && hdr+int(binary.BigEndian.Uint16(s[7:9])) == len(s)
}

// checkSignature verifies a security.ima signature over the recorded file
// digest; it returns "" when it verifies with a policy key.
func (c *Compiled) checkSignature(raw []byte, algoName string, digest []byte) string {
	l, err := label.ParseIMA(raw)
	if err != nil || l.Sig == nil {
		return BadSignature
	}
	if l.Algo.String() != algoName {
		return BadSignature // signed over another algorithm's digest
	}
	keys := c.keys[l.Sig.KeyID]
	if len(keys) == 0 {
		return UnknownKey
	}
	for _, k := range keys {
		if sig.VerifyDigest(k, l.Sig.Algo, digest, l.Sig.Sig) == nil {
			return ""
		}
	}
	return BadSignature
}

// Paths returns the listed paths, sorted (for display).
func (c *Compiled) Paths() []string {
	out := make([]string, 0, len(c.digests))
	for p := range c.digests {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
