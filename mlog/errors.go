// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/intactsec/intact/digest"
)

// ErrFormat is wrapped by every error about a malformed list or record.
var ErrFormat = errors.New("malformed measurement list")

// ErrUnknownTemplate is returned when an operation needs to interpret the
// fields of a template this package does not know.
var ErrUnknownTemplate = errors.New("unknown template")

// ErrUnsupportedBank is returned for a PCR bank whose hash Go cannot compute.
var ErrUnsupportedBank = errors.New("unsupported pcr bank")

// ParseError reports where a list is malformed: the byte offset (binary
// lists) or line (ASCII lists), and the index of the record being read.
type ParseError struct {
	File   string // set by ReadFile; empty when parsing bytes
	Offset int64  // byte offset of the bad item in a binary list, -1 for ASCII
	Line   int    // line number (from 1) in an ASCII list, 0 for binary
	Record int    // index (from 0) of the record being parsed
	Msg    string
}

func (e *ParseError) Error() string {
	var where string
	if e.Line > 0 {
		where = fmt.Sprintf("line %d", e.Line)
	} else {
		where = fmt.Sprintf("offset %d (0x%x), record %d", e.Offset, e.Offset, e.Record)
	}
	if e.File != "" {
		return fmt.Sprintf("%s: %s: %s", e.File, where, e.Msg)
	}
	return where + ": " + e.Msg
}

// Unwrap returns ErrFormat.
func (e *ParseError) Unwrap() error { return ErrFormat }

// TemplateHashError reports a record whose stored template digest is not
// the digest of its template data.
type TemplateHashError struct {
	Record int
	Bank   digest.Algo
	Stored []byte
	Want   []byte // the digest of the template data
}

func (e *TemplateHashError) Error() string {
	return fmt.Sprintf("record %d: %s template hash %s does not match its template data (%s)",
		e.Record, e.Bank, hex.EncodeToString(e.Stored), hex.EncodeToString(e.Want))
}

// MismatchError reports a PCR that no prefix of the list replays to.
type MismatchError struct {
	Bank digest.Algo
	PCR  int
	Want []byte // the trusted PCR value
	Got  []byte // the value the whole list replays to
	// From is the index of the first record that extends this PCR: no
	// prefix from there to the end of the list replays to Want. It is -1
	// when the list has no record for the PCR.
	From int
	// Records is the number of records in the list.
	Records int
}

func (e *MismatchError) Error() string {
	from := "the list has no record for it"
	if e.From >= 0 {
		from = fmt.Sprintf("no prefix from record %d (its first record) to record %d matches", e.From, e.Records-1)
	}
	return fmt.Sprintf("%s pcr %d = %s: %s; the whole list replays to %s",
		e.Bank, e.PCR, hex.EncodeToString(e.Want), from, hex.EncodeToString(e.Got))
}

// ReplayError collects everything that failed in a replay: one
// MismatchError per PCR and bank that did not match, and the first record
// with a bad template hash, if any (the likely place of a tampered record).
type ReplayError struct {
	Mismatches   []*MismatchError
	TemplateHash *TemplateHashError
}

func (e *ReplayError) Error() string {
	var s string
	for i, m := range e.Mismatches {
		if i > 0 {
			s += "; "
		}
		s += m.Error()
	}
	if e.TemplateHash != nil {
		if s != "" {
			s += "; "
		}
		s += "first bad record: " + e.TemplateHash.Error()
	}
	return "replay failed: " + s
}

// Unwrap returns the component errors, for errors.As.
func (e *ReplayError) Unwrap() []error {
	var errs []error
	for _, m := range e.Mismatches {
		errs = append(errs, m)
	}
	if e.TemplateHash != nil {
		errs = append(errs, e.TemplateHash)
	}
	return errs
}
