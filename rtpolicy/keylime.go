// SPDX-License-Identifier: Apache-2.0

package rtpolicy

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/sig"
)

// Keylime's runtime policy (keylime/ima/ima.py, format version 1) and its
// older flat allowlists ("<hex digest> <path>" lines) import into intact's
// format so that intact's evaluator judges every record as Keylime does:
//
//   - digests: Keylime compares the record's digest as bare lower-case hex
//     with the listed strings, whatever the algorithm. Each bare hex digest
//     becomes one "algo:hex" digest per algorithm of that size that IMA
//     uses (32 hex: md5; 40: sha1; 56: sha224; 64: sha256 and sm3; 96:
//     sha384; 128: sha512). A listed string that can never equal a
//     record's hex (an "algo:" prefix, upper case, an odd length) is
//     dropped with a warning; its path stays listed, so the record fails
//     as in Keylime.
//   - excludes: Python regular expressions applied with re.match, that is
//     anchored at the start of the path: each becomes "^(?:re)". One that
//     RE2 cannot compile (look-around, back-references) is an error.
//   - boot_aggregate: Keylime accepts the listed values or the one
//     computed from the quoted PCRs; intact's verifier checks it against
//     the quoted PCRs only, so listed values are dropped (with a warning).
//   - ima-sig: a signature that verifies with a key passes; otherwise
//     Keylime judges the digest: imports set signature_fallback. Keys come
//     from verification-keys (an IMA keyring as a JSON string).
//   - ima-buf and keyrings: both are judged by name against buffers. Keys
//     that Keylime learns from keyring records to verify later signatures
//     are not learned (a warning says so when keyrings are listed);
//     ignored_keyrings become excludes of those names.
//   - violations (ToMToU, open-writers): Keylime skips them by default
//     (ignore_tomtou_errors): imports set ignore_violations.
//   - dm_policy (device-mapper) is not supported: a warning, and dm
//     records are judged against buffers.

// keylimeAlgos are the algorithms a bare hex digest of each length may be.
var keylimeAlgos = map[int][]digest.Algo{
	16: {digest.MD5},
	20: {digest.SHA1},
	28: {digest.SHA224},
	32: {digest.SHA256, digest.SM3},
	48: {digest.SHA384},
	64: {digest.SHA512},
}

// wellKnownKeyrings are excluded for an ignored_keyrings of "*".
var wellKnownKeyrings = []string{".ima", ".evm", "_ima", "_evm", ".builtin_trusted_keys",
	".secondary_trusted_keys", ".platform", ".machine", ".blacklist", ".builtin_regdb_keys"}

type keylimeIMA struct {
	IgnoredKeyrings []string        `json:"ignored_keyrings"`
	LogHashAlg      string          `json:"log_hash_alg"`
	DMPolicy        json.RawMessage `json:"dm_policy"`
}

type keylimePolicy struct {
	Meta struct {
		Version   *int   `json:"version"`
		Generator int    `json:"generator"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
	Release          int64               `json:"release"`
	Digests          map[string][]string `json:"digests"`
	Hashes           map[string][]string `json:"hashes"` // the pre-6.6 JSON allowlist
	Excludes         []string            `json:"excludes"`
	Keyrings         map[string][]string `json:"keyrings"`
	IMA              keylimeIMA          `json:"ima"`
	IMABuf           map[string][]string `json:"ima-buf"`
	VerificationKeys string              `json:"verification-keys"`
}

var keylimeFields = []string{"meta", "release", "digests", "hashes", "excludes", "keyrings", "ima", "ima-buf", "verification-keys"}

// ImportKeylime converts a Keylime runtime policy (JSON), a pre-6.6 JSON
// allowlist or a flat allowlist into an intact policy named name. It
// returns warnings about what could not be carried over exactly. Errors
// wrap ErrFormat.
func ImportKeylime(b []byte, name string) (Policy, []string, error) {
	if len(b) > MaxSize {
		return Policy{}, nil, ferr("keylime policy of %d bytes (at most %d)", len(b), MaxSize)
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '{' {
		return importKeylimeJSON(t, name)
	}
	return importFlatAllowlist(b, name)
}

type importer struct {
	out  Policy
	warn []string
}

func (im *importer) warnf(format string, args ...any) {
	const max = 200
	switch {
	case len(im.warn) == max:
		im.warn = append(im.warn, "more warnings left out")
		return
	case len(im.warn) > max:
		return
	}
	im.warn = append(im.warn, fmt.Sprintf(format, args...))
}

// typedDigests turns Keylime's bare hex digests for one name into intact
// digests; field names the map in warnings.
func (im *importer) typedDigests(field, name string, list []string) []string {
	out := []string{}
	for _, d := range list {
		raw, err := hex.DecodeString(d)
		algos := keylimeAlgos[len(raw)]
		switch {
		case strings.Contains(d, ":"):
			im.warnf("%s[%q]: %q never matches in keylime (it compares bare hex): dropped", field, name, d)
			continue
		case err != nil || d != strings.ToLower(d) || d == "":
			im.warnf("%s[%q]: %q is not lower-case hex, never matches in keylime: dropped", field, name, d)
			continue
		case len(algos) == 0:
			im.warnf("%s[%q]: %q has %d bytes, the size of no supported hash algorithm: dropped", field, name, d, len(raw))
			continue
		}
		for _, a := range algos {
			out = append(out, a.String()+":"+d)
		}
	}
	return out
}

func (im *importer) digestMap(field string, in map[string][]string, into map[string][]string) {
	for _, name := range slices.Sorted(maps.Keys(in)) {
		if name == "" {
			im.warnf("%s: an empty name: dropped", field)
			continue
		}
		into[name] = append(into[name], im.typedDigests(field, name, in[name])...)
	}
}

// convertExclude turns a Python regular expression applied with re.match
// into an RE2 one applied with a search.
func convertExclude(i int, ex string) (string, error) {
	re := strings.ReplaceAll(ex, `\Z`, `\z`)
	out := "^(?:" + re + ")"
	if _, err := regexp.Compile(out); err != nil {
		return "", ferr("keylime excludes[%d] %q: not a regular expression intact can run (RE2: no look-around or back-references): %v", i, ex, err)
	}
	return out, nil
}

func importKeylimeJSON(b []byte, name string) (Policy, []string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return Policy{}, nil, ferr("keylime policy: %v", err)
	}
	im := &importer{out: Policy{Format: Version, Name: name, Digests: map[string][]string{},
		IgnoreViolations: true, SignatureFallback: true}}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(keylimeFields, k) {
			im.warnf("unknown field %q: ignored", k)
		}
	}
	var kp keylimePolicy
	if err := json.Unmarshal(b, &kp); err != nil {
		return Policy{}, nil, ferr("keylime policy: %v", err)
	}
	_, isPolicy := fields["digests"]
	_, isAllowlist := fields["hashes"]
	switch {
	case isPolicy && isAllowlist:
		return Policy{}, nil, ferr("keylime policy: both digests (runtime policy) and hashes (allowlist)")
	case isPolicy:
		if kp.Meta.Version == nil {
			return Policy{}, nil, ferr("keylime policy: no meta.version")
		}
		if *kp.Meta.Version != 1 {
			return Policy{}, nil, ferr("keylime policy: meta.version %d (only version 1 is known)", *kp.Meta.Version)
		}
	case isAllowlist:
		kp.Digests = kp.Hashes
	default:
		return Policy{}, nil, ferr("keylime policy: neither digests (runtime policy) nor hashes (allowlist)")
	}
	if kp.Release < 0 {
		return Policy{}, nil, ferr("keylime policy: release %d", kp.Release)
	}
	im.out.Release = kp.Release
	if ba, ok := kp.Digests[bootAggregate]; ok {
		im.warnf("digests[%q]: %d values dropped: intact's verifier checks the boot_aggregate against the quoted boot PCRs", bootAggregate, len(ba))
		delete(kp.Digests, bootAggregate)
	}
	im.digestMap("digests", kp.Digests, im.out.Digests)
	for i, ex := range kp.Excludes {
		if ex == "" {
			im.warnf("excludes[%d] is empty: it matches every path, as in keylime", i)
		}
		re, err := convertExclude(i, ex)
		if err != nil {
			return Policy{}, nil, err
		}
		im.out.Excludes = append(im.out.Excludes, re)
	}
	buffers := map[string][]string{}
	im.digestMap("ima-buf", kp.IMABuf, buffers)
	if len(kp.Keyrings) > 0 {
		im.digestMap("keyrings", kp.Keyrings, buffers)
		im.warnf("keyrings: keys loaded on keyrings are accepted by digest but not learned to verify ima-sig records; add them to keys (intact policy generate --cert)")
	}
	if len(buffers) > 0 {
		im.out.Buffers = buffers
	}
	for _, kr := range kp.IMA.IgnoredKeyrings {
		names := []string{kr}
		if kr == "*" {
			names = wellKnownKeyrings
			im.warnf("ima.ignored_keyrings \"*\": records of the keyrings %s are excluded; other keyrings are judged against buffers", strings.Join(wellKnownKeyrings, ", "))
		}
		for _, n := range names {
			im.out.Excludes = append(im.out.Excludes, "^"+regexp.QuoteMeta(n)+"$")
		}
	}
	if dm := bytes.TrimSpace(kp.IMA.DMPolicy); len(dm) > 0 && !bytes.Equal(dm, []byte("null")) {
		im.warnf("ima.dm_policy: device-mapper policies are not supported; dm records are judged against buffers")
	}
	switch kp.IMA.LogHashAlg {
	case "", "sha1", "sha256", "sha384", "sha512":
	default:
		im.warnf("ima.log_hash_alg %q: unknown (keylime falls back to sha1); intact checks template digests in the list's own bank", kp.IMA.LogHashAlg)
	}
	if err := im.verificationKeys(kp.VerificationKeys); err != nil {
		return Policy{}, nil, err
	}
	c, err := Canonical(im.out)
	if err != nil {
		return Policy{}, nil, err
	}
	return c, im.warn, nil
}

const bootAggregate = "boot_aggregate"

// verificationKeys imports Keylime's verification-keys: a JSON string
// holding an IMA keyring {"pubkeys": [base64 DER], "keyids": [n]}, or a
// map of keyring names to such strings.
func (im *importer) verificationKeys(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var obj any
	if err := json.Unmarshal([]byte(s), &obj); err != nil {
		return ferr("keylime verification-keys: %v", err)
	}
	if str, ok := obj.(string); ok { // encoded twice
		if err := json.Unmarshal([]byte(str), &obj); err != nil {
			return ferr("keylime verification-keys: %v", err)
		}
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return ferr("keylime verification-keys: not a keyring object")
	}
	if _, ok := m["pubkeys"]; ok {
		return im.keyring("verification-keys", m)
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		str, ok := m[name].(string)
		if !ok {
			return ferr("keylime verification-keys[%q]: not a keyring string", name)
		}
		var kr map[string]any
		if err := json.Unmarshal([]byte(str), &kr); err != nil {
			return ferr("keylime verification-keys[%q]: %v", name, err)
		}
		if err := im.keyring("verification-keys["+name+"]", kr); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) keyring(field string, m map[string]any) error {
	pubs, ok := m["pubkeys"].([]any)
	if !ok {
		return ferr("keylime %s: no pubkeys list", field)
	}
	ids, _ := m["keyids"].([]any)
	for i, p := range pubs {
		s, ok := p.(string)
		if !ok {
			return ferr("keylime %s: pubkeys[%d] is not a string", field, i)
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return ferr("keylime %s: pubkeys[%d]: %v", field, i, err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if curve, ok := unsupportedECCurve(der); err != nil && ok {
			// Keylime verifies with any curve OpenSSL knows; intact
			// with the NIST curves. The key's signatures will fail
			// (unknown-key, or the digest with signature fallback).
			im.warnf("%s: pubkeys[%d] is an EC key on %s, which intact does not support: dropped (the other keys are kept)", field, i, curve)
			continue
		}
		if err != nil {
			return ferr("keylime %s: pubkeys[%d]: not a DER public key: %v", field, i, err)
		}
		id, err := sig.KeyID(pub)
		if err != nil {
			return ferr("keylime %s: pubkeys[%d]: %v", field, i, err)
		}
		if i < len(ids) {
			if f, ok := ids[i].(float64); ok && uint32(f) != id && f == float64(uint32(f)) {
				im.warnf("%s: pubkeys[%d] is given keyid %08x; intact names it by its computed keyid %08x", field, i, uint32(f), id)
			}
		}
		im.out.Keys = append(im.out.Keys, base64.StdEncoding.EncodeToString(der))
	}
	return nil
}

// OIDs of EC keys.
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// unsupportedECCurve reports whether der is a SubjectPublicKeyInfo of an
// EC key on a named curve crypto/x509 does not support, and names it
// (secp256k1 by name, others by OID).
func unsupportedECCurve(der []byte) (string, bool) {
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil || len(rest) != 0 || !spki.Algorithm.Algorithm.Equal(oidECPublicKey) {
		return "", false
	}
	var curve asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) != 0 {
		return "", false
	}
	for _, nist := range []asn1.ObjectIdentifier{{1, 3, 132, 0, 33}, {1, 2, 840, 10045, 3, 1, 7}, {1, 3, 132, 0, 34}, {1, 3, 132, 0, 35}} {
		if curve.Equal(nist) {
			return "", false // a supported curve: a malformed key is an error
		}
	}
	if curve.Equal(oidSecp256k1) {
		return "secp256k1", true
	}
	return "the curve " + curve.String(), true
}

// importFlatAllowlist reads "<hex digest> <path>" lines (sha256sum
// output, Keylime's flat allowlist). Like Keylime it splits each line at
// the first run of white space, skips lines that do not split in two,
// and writes spaces in paths as '_' (as IMA's list does).
func importFlatAllowlist(b []byte, name string) (Policy, []string, error) {
	im := &importer{out: Policy{Format: Version, Name: name, Digests: map[string][]string{},
		IgnoreViolations: true, SignatureFallback: true}}
	raw := map[string][]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			im.warnf("line %d: %q is not \"digest path\": skipped", n+1, line)
			continue
		}
		d, path := line[:i], strings.TrimLeft(line[i:], " \t")
		path = strings.ReplaceAll(path, " ", "_")
		if path == "" {
			continue
		}
		raw[path] = append(raw[path], d)
	}
	if ba, ok := raw[bootAggregate]; ok {
		im.warnf("%s: %d values dropped: intact's verifier checks the boot_aggregate against the quoted boot PCRs", bootAggregate, len(ba))
		delete(raw, bootAggregate)
	}
	im.digestMap("allowlist", raw, im.out.Digests)
	if len(raw) == 0 {
		return Policy{}, nil, ferr("allowlist: no \"digest path\" line")
	}
	c, err := Canonical(im.out)
	if err != nil {
		return Policy{}, nil, err
	}
	return c, im.warn, nil
}
