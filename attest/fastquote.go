// SPDX-License-Identifier: Apache-2.0

package attest

import (
	"encoding/base64"
	"slices"
	"strconv"
)

// fastQuoteResponse decodes the quote response as the agent's
// encoding/json writes it, without reflection: the hot message of every
// attestation. It accepts a strict subset of what decodeBytes accepts
// (exact lowercase keys, each at most once; strings without escapes or
// non-ASCII bytes; base64 in the standard alphabet; canonical integers)
// and reports ok=false for anything else, which the caller then decodes
// with encoding/json. Whatever it accepts, encoding/json decodes to the
// same value (FuzzFastQuoteResponse). The checks on the values are the
// caller's, as for the slow path.
func fastQuoteResponse(b []byte) (q *QuoteResponse, ok bool) {
	s := scanner{b: b}
	q = &QuoteResponse{}
	if !s.object(quoteKeys[:], func(i int) (ok bool) {
		switch i {
		case 0:
			q.Attest, ok = s.bytes()
		case 1:
			q.Signature, ok = s.bytes()
		case 2:
			q.PCRs, ok = s.pcrs()
		case 3:
			q.Log, ok = s.logChunk()
		}
		return ok
	}) {
		return nil, false
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false
	}
	return q, true
}

// The members of the two objects fastQuoteResponse reads, by field
// number (scanner.object).
var (
	quoteKeys    = [...]string{"attest", "signature", "pcrs", "log"}
	logChunkKeys = [...]string{"source", "start", "count", "data", "more"}
)

type scanner struct {
	b   []byte
	i   int
	err bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) lit(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) word(w string) bool {
	s.ws()
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *scanner) objectStart() bool { return s.lit('{') }

// first reports whether the object just opened has a member; next,
// after a member, whether another follows. Anything else sets s.err.
func (s *scanner) first() bool {
	return !s.lit('}')
}

func (s *scanner) next() bool {
	if s.lit(',') {
		return true
	}
	if !s.lit('}') {
		s.err = true
	}
	return false
}

// object reads an object whose members are named by keys, each at most
// once and no other; member(i) reads the value of keys[i].
func (s *scanner) object(keys []string, member func(i int) bool) bool {
	if !s.objectStart() {
		return false
	}
	var seen uint64
	for more := s.first(); more; more = s.next() {
		key, ok := s.key()
		if !ok {
			return false
		}
		i := slices.Index(keys, key)
		if i < 0 || !member(i) || seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
	}
	return !s.err
}

// str reads a string of printable ASCII without escapes and returns
// its bytes (aliasing s.b).
func (s *scanner) str() ([]byte, bool) {
	if !s.lit('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *scanner) key() (string, bool) {
	k, ok := s.str()
	if !ok || !s.lit(':') {
		return "", false
	}
	return string(k), true
}

// bytes reads a base64 string (or null, which is nil) as encoding/json
// decodes a []byte.
func (s *scanner) bytes() ([]byte, bool) {
	if s.word("null") {
		return nil, true
	}
	str, ok := s.str()
	if !ok {
		return nil, false
	}
	for _, c := range str {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, false
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(str)))
	n, err := base64.StdEncoding.Decode(out, str)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// int reads a canonical decimal integer of at most 18 digits (it fits
// an int64).
func (s *scanner) int() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - digits
	if n == 0 || n > 18 || (n > 1 && s.b[digits] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return v, err == nil
}

func (s *scanner) pcrs() (map[string]map[int][]byte, bool) {
	if !s.objectStart() {
		return nil, false
	}
	out := map[string]map[int][]byte{}
	for more := s.first(); more; more = s.next() {
		bank, ok := s.key()
		if !ok || out[bank] != nil || !s.objectStart() {
			return nil, false
		}
		vals := map[int][]byte{}
		for more := s.first(); more; more = s.next() {
			k, ok := s.key()
			if !ok || len(k) == 0 || len(k) > 2 || (len(k) > 1 && k[0] == '0') {
				return nil, false
			}
			idx := 0
			for _, c := range []byte(k) {
				if c < '0' || c > '9' {
					return nil, false
				}
				idx = idx*10 + int(c-'0')
			}
			if _, dup := vals[idx]; dup {
				return nil, false
			}
			if vals[idx], ok = s.bytes(); !ok {
				return nil, false
			}
		}
		if s.err {
			return nil, false
		}
		out[bank] = vals
	}
	return out, !s.err
}

func (s *scanner) logChunk() (*LogChunk, bool) {
	c := &LogChunk{}
	ok := s.object(logChunkKeys[:], func(i int) (ok bool) {
		switch i {
		case 0:
			var v []byte
			v, ok = s.str()
			c.Source = string(v)
		case 1:
			c.Start, ok = s.int()
		case 2:
			c.Count, ok = s.int()
		case 3:
			c.Data, ok = s.bytes()
		case 4:
			ok = true
			switch {
			case s.word("true"):
				c.More = true
			case s.word("false"):
			default:
				ok = false
			}
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	return c, true
}
