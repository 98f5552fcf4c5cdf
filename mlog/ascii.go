// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/intactsec/intact/digest"
)

// AppendASCII appends the record as the kernel prints it in
// ascii_runtime_measurements: "%2d " pcr, the template digest in hex, the
// template name, then a space and the rendering of each field.
func (r *Record) AppendASCII(dst []byte) ([]byte, error) {
	fields, err := r.Fields()
	if err != nil {
		return dst, err
	}
	if r.PCR < 10 {
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(r.PCR), 10)
	dst = append(dst, ' ')
	dst = hex.AppendEncode(dst, r.Digest)
	dst = append(dst, ' ')
	dst = append(dst, r.Template...)
	order := r.order()
	for _, f := range fields {
		dst = append(dst, ' ')
		dst, err = appendFieldASCII(dst, f, order)
		if err != nil {
			return dst, fmt.Errorf("template %s field %s: %w", r.Template, f.ID, err)
		}
	}
	return append(dst, '\n'), nil
}

func appendFieldASCII(dst []byte, f Field, order byteOrder) ([]byte, error) {
	def, ok := fieldDefs[f.ID]
	if !ok { // a field of an unknown template: raw hex
		return hex.AppendEncode(dst, f.Data), nil
	}
	switch def.kind {
	case kindString:
		return append(dst, cString(f.Data)...), nil
	case kindDigestNG:
		if len(f.Data) == 0 {
			return dst, nil
		}
		prefix, d, err := splitDigestNG(f.Data)
		if err != nil {
			return dst, err
		}
		dst = append(dst, prefix...)
		return hex.AppendEncode(dst, d), nil
	case kindUint:
		switch len(f.Data) {
		case 1:
			return strconv.AppendUint(dst, uint64(f.Data[0]), 10), nil
		case 2:
			return strconv.AppendUint(dst, uint64(order.Uint16(f.Data)), 10), nil
		case 4:
			return strconv.AppendUint(dst, uint64(order.Uint32(f.Data)), 10), nil
		case 8:
			return strconv.AppendUint(dst, order.Uint64(f.Data), 10), nil
		}
		return dst, fmt.Errorf("%w: integer field of %d bytes", ErrFormat, len(f.Data))
	}
	return hex.AppendEncode(dst, f.Data), nil
}

// MarshalASCII returns the list as the kernel's ascii_runtime_measurements.
func (l *List) MarshalASCII() ([]byte, error) {
	dst := make([]byte, 0, len(l.records)*160)
	for i := range l.records {
		var err error
		dst, err = l.records[i].AppendASCII(dst)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return dst, nil
}

// ParseASCII parses an ASCII measurement list. The binary template data
// is rebuilt from the fields, so the template digests can be checked and
// the list converted to binary; this needs a known template (an unknown
// template's fields cannot be told apart in ASCII). With opts.Bank unset
// the bank is taken from the digest size of the first record (20 bytes
// SHA-1, 32 SHA-256, 48 SHA-384, 64 SHA-512).
func ParseASCII(b []byte, opts Options) (*List, error) {
	l := NewList(opts)
	bankSet := opts.Bank != digest.MD4
	var order byteOrder = binary.LittleEndian
	if opts.BigEndian {
		order = binary.BigEndian
	}
	line := 0
	for len(b) > 0 {
		line++
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, &ParseError{Offset: -1, Line: line, Record: len(l.records), Msg: "last line has no newline"}
		}
		text := string(b[:i])
		b = b[i+1:]
		r, err := parseASCIIRecord(text, order)
		if err != nil {
			return nil, &ParseError{Offset: -1, Line: line, Record: len(l.records), Msg: err.Error()}
		}
		if !bankSet {
			bank, ok := digest.BankForSize(len(r.Digest))
			if !ok {
				return nil, &ParseError{Offset: -1, Line: line, Record: len(l.records), Msg: fmt.Sprintf("template digest of %d bytes matches no bank", len(r.Digest))}
			}
			l.bank, bankSet = bank, true
		}
		if len(r.Digest) != l.bank.Size() {
			return nil, &ParseError{Offset: -1, Line: line, Record: len(l.records), Msg: fmt.Sprintf("template digest of %d bytes in a %s list", len(r.Digest), l.bank)}
		}
		r.bigEndian = opts.BigEndian
		l.records = append(l.records, r)
	}
	return l, nil
}

func parseASCIIRecord(text string, order byteOrder) (Record, error) {
	var r Record
	parts := strings.SplitN(strings.TrimLeft(text, " "), " ", 4)
	if len(parts) < 3 {
		return r, fmt.Errorf("want \"PCR DIGEST TEMPLATE FIELDS...\", got %q", text)
	}
	pcr, err := strconv.Atoi(parts[0])
	if err != nil || pcr < 0 || pcr >= NumPCRs {
		return r, fmt.Errorf("bad pcr index %q", parts[0])
	}
	r.PCR = pcr
	r.Digest, err = hex.DecodeString(parts[1])
	if err != nil || len(parts[1]) == 0 {
		return r, fmt.Errorf("template digest %q is not hex", parts[1])
	}
	r.Template = internTemplate([]byte(parts[2]))
	ids := templateFields(r.Template)
	if ids == nil {
		return r, fmt.Errorf("%w %q: its ASCII fields cannot be parsed", ErrUnknownTemplate, r.Template)
	}
	var rest string
	if len(parts) == 4 {
		rest = parts[3]
	}
	vals := strings.SplitN(rest, " ", len(ids))
	if len(vals) != len(ids) {
		return r, fmt.Errorf("template %s: %d fields, want %d", r.Template, len(vals), len(ids))
	}
	if r.Template == TemplateIMA {
		return parseASCIIIMA(r, vals, order)
	}
	for i, id := range ids {
		data, err := parseFieldASCII(id, vals[i], order)
		if err != nil {
			return r, fmt.Errorf("template %s field %s: %v", r.Template, id, err)
		}
		r.Data = appendField(r.Data, order, data)
	}
	return r, nil
}

func parseASCIIIMA(r Record, vals []string, order byteOrder) (Record, error) {
	d, err := hex.DecodeString(vals[0])
	if err != nil || len(d) != 20 {
		return r, fmt.Errorf("template ima: digest %q is not 20 bytes of hex", vals[0])
	}
	if len(vals[1]) > maxIMAName || strings.IndexByte(vals[1], 0) >= 0 {
		return r, fmt.Errorf("template ima: name longer than %d bytes or with a NUL byte", maxIMAName)
	}
	r.Data = append(d, order.AppendUint32(nil, uint32(len(vals[1])))...)
	r.Data = append(r.Data, vals[1]...)
	return r, nil
}

func parseFieldASCII(id, s string, order byteOrder) ([]byte, error) {
	def := fieldDefs[id]
	switch def.kind {
	case kindString:
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("string %q contains a NUL byte", s)
		}
		return append([]byte(s), 0), nil
	case kindDigestNG:
		if s == "" {
			return nil, nil
		}
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return nil, fmt.Errorf("digest %q has no algorithm prefix", s)
		}
		if !validAlgoPrefix(s[:i]) {
			// The rendering splits the binary field at its first NUL:
			// an algorithm with a NUL (or none) would not print back.
			return nil, fmt.Errorf("digest %q: algorithm %q is not a name", s, s[:i])
		}
		d, err := hex.DecodeString(s[i+1:])
		if err != nil {
			return nil, fmt.Errorf("digest %q is not hex", s[i+1:])
		}
		b := append([]byte(s[:i+1]), 0)
		return append(b, d...), nil
	case kindUint:
		v, err := strconv.ParseUint(s, 10, def.size*8)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", s)
		}
		if def.size == 2 {
			return order.AppendUint16(nil, uint16(v)), nil
		}
		return order.AppendUint32(nil, uint32(v)), nil
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex", s)
	}
	return d, nil
}

// validAlgoPrefix: a d-ng field's algorithm as the kernel prints it (a
// hash algorithm name such as "sha256", or d-ngv2's "ima:sha256"): 1-32
// bytes of lower-case letters, digits, '-', '_' and ':'.
func validAlgoPrefix(a string) bool {
	if a == "" || len(a) > 32 {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}
