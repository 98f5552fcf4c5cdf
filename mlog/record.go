// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/intactsec/intact/digest"
)

// Record is one measurement: the PCR it extends, its template digest in
// the list's bank, the template name and the template data.
type Record struct {
	PCR      int
	Digest   []byte // template digest in the list's bank; all zeros for a violation
	Template string // template name; a format string ("d-ng|n-ng") for custom templates
	Data     []byte // template data as in the binary list (see the package doc for "ima")

	bigEndian bool // byte order of the lengths inside Data
}

// Field is one template field: its id ("" when the template is unknown)
// and its data (without the length prefix).
type Field struct {
	ID   string
	Data []byte
}

// Violation reports whether the record is a violation (an all-zero
// template digest), which the kernel extends as all 0xff.
func (r *Record) Violation() bool { return isZero(r.Digest) }

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (r *Record) order() byteOrder {
	if r.bigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// Fields splits the template data into its fields. Fields of an unknown
// template have empty ids; their data is kept raw.
func (r *Record) Fields() ([]Field, error) {
	if r.Template == TemplateIMA {
		return r.imaFields()
	}
	ids := templateFields(r.Template)
	var fields []Field
	b := r.Data
	order := r.order()
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: template %q: truncated field length", ErrFormat, r.Template)
		}
		n := order.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: template %q: field %d length %d exceeds the %d bytes left", ErrFormat, r.Template, len(fields), n, len(b)-4)
		}
		f := Field{Data: b[4 : 4+n]}
		if ids != nil {
			if len(fields) >= len(ids) {
				return nil, fmt.Errorf("%w: template %q: more than %d fields", ErrFormat, r.Template, len(ids))
			}
			f.ID = ids[len(fields)]
		}
		fields = append(fields, f)
		b = b[4+n:]
	}
	if ids != nil && len(fields) != len(ids) {
		return nil, fmt.Errorf("%w: template %q: %d fields, want %d", ErrFormat, r.Template, len(fields), len(ids))
	}
	return fields, nil
}

// imaFields splits the data of template "ima": d[20] || u32 len || name.
func (r *Record) imaFields() ([]Field, error) {
	b := r.Data
	if len(b) < 24 {
		return nil, fmt.Errorf("%w: template ima: %d bytes of data, want at least 24", ErrFormat, len(b))
	}
	n := r.order().Uint32(b[20:])
	if uint64(n) != uint64(len(b)-24) || n > maxIMAName {
		return nil, fmt.Errorf("%w: template ima: name length %d, %d bytes left", ErrFormat, n, len(b)-24)
	}
	// The name field holds the name with its NUL, as in the kernel.
	name := make([]byte, n+1)
	copy(name, b[24:])
	return []Field{{ID: "d", Data: b[:20]}, {ID: "n", Data: name}}, nil
}

// maxIMAName is the longest name template "ima" can hold
// (IMA_EVENT_NAME_LEN_MAX).
const maxIMAName = 255

// field returns the first field with one of the ids.
func (r *Record) field(ids ...string) (Field, bool) {
	fields, err := r.Fields()
	if err != nil {
		return Field{}, false
	}
	for _, f := range fields {
		for _, id := range ids {
			if f.ID == id {
				return f, true
			}
		}
	}
	return Field{}, false
}

// FileDigest returns the algorithm prefix ("sha256", or "ima:sha256" for
// d-ngv2; "sha1" for template ima) and the digest of the record's d-ng,
// d-ngv2 or d field. ok is false when the record has no such field.
// The algorithm is the list's text, which may name an algorithm that
// digest.ParseAlgo does not know.
func (r *Record) FileDigest() (algo string, digest []byte, ok bool) {
	f, ok := r.field("d-ng", "d-ngv2", "d")
	if !ok {
		return "", nil, false
	}
	if f.ID == "d" {
		return "sha1", f.Data, true
	}
	prefix, d, err := splitDigestNG(f.Data)
	if err != nil {
		return "", nil, false
	}
	return strings.TrimSuffix(prefix, ":"), d, true
}

// Name returns the file (or event) name of the n-ng or n field.
func (r *Record) Name() (string, bool) {
	f, ok := r.field("n-ng", "n")
	if !ok {
		return "", false
	}
	return cString(f.Data), true
}

// Signature returns the sig field (the file's security.ima signature),
// empty when the record has none.
func (r *Record) Signature() ([]byte, bool) {
	f, ok := r.field("sig")
	return f.Data, ok
}

// cString returns the bytes up to the first NUL, as the kernel prints them.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// splitDigestNG splits a d-ng style field: "<prefix>:" NUL digest.
func splitDigestNG(b []byte) (prefix string, digest []byte, err error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("%w: digest field without the NUL after its algorithm", ErrFormat)
	}
	return string(b[:i]), b[i+1:], nil
}

// appendField appends u32 len || data in the record's byte order.
func appendField(dst []byte, order byteOrder, data []byte) []byte {
	dst = order.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// digestNG returns the d-ng field data "<algo>:" NUL digest.
func digestNG(algo digest.Algo, sum []byte) []byte {
	b := make([]byte, 0, len(algo.String())+2+len(sum))
	b = append(b, algo.String()...)
	b = append(b, ':', 0)
	return append(b, sum...)
}

// FileMeasurement describes one measured file for NewRecord.
type FileMeasurement struct {
	Algo   digest.Algo // algorithm of Digest
	Digest []byte      // the file content digest
	Path   string      // the file's full path
	// Sig is the file's security.ima when it holds a signature (type 0x03
	// or 0x06); template ima-sig records it, empty otherwise.
	Sig []byte
	// Violation makes a violation record, as the kernel's IMA writes for
	// open_writers and ToMToU: Digest must be all zeros, the template
	// digest is all zeros, and the PCR is extended with all ff.
	Violation bool
}

// NewRecord builds an ima-ng or ima-sig record for a file measurement and
// computes its template digest in bank. The record is little-endian, as
// the kernel writes on every little-endian machine.
func NewRecord(pcr int, template string, m FileMeasurement, bank digest.Algo) (Record, error) {
	if pcr < 0 || pcr >= NumPCRs {
		return Record{}, fmt.Errorf("pcr %d out of range 0..%d", pcr, NumPCRs-1)
	}
	if m.Algo.Size() == 0 || len(m.Digest) != m.Algo.Size() {
		return Record{}, fmt.Errorf("digest of %d bytes for algorithm %s", len(m.Digest), m.Algo)
	}
	if strings.IndexByte(m.Path, 0) >= 0 {
		return Record{}, fmt.Errorf("path %q contains a NUL byte", m.Path)
	}
	order := binary.LittleEndian
	var data []byte
	data = appendField(data, order, digestNG(m.Algo, m.Digest))
	data = appendField(data, order, append([]byte(m.Path), 0))
	switch template {
	case TemplateIMANG:
		if len(m.Sig) > 0 {
			return Record{}, fmt.Errorf("template ima-ng has no signature field")
		}
	case TemplateIMASig:
		data = appendField(data, order, m.Sig)
	default:
		return Record{}, fmt.Errorf("%w: cannot write template %q (only ima-ng and ima-sig)", ErrUnknownTemplate, template)
	}
	r := Record{PCR: pcr, Template: template, Data: data}
	if m.Violation {
		if !isZero(m.Digest) {
			return Record{}, fmt.Errorf("violation record with a non-zero digest")
		}
		if bank.Size() == 0 {
			return Record{}, fmt.Errorf("%w: %s", ErrUnsupportedBank, bank)
		}
		r.Digest = make([]byte, bank.Size())
		return r, nil
	}
	d, err := r.TemplateDigest(bank)
	if err != nil {
		return Record{}, err
	}
	r.Digest = d
	return r, nil
}

// NewBufferRecord builds an ima-buf record, as the kernel records a
// buffer measurement (a key, the kexec command line): the d-ng digest is
// the SHA-256 of buf, the name names the event and buf is kept whole.
func NewBufferRecord(pcr int, name string, buf []byte, bank digest.Algo) (Record, error) {
	if pcr < 0 || pcr >= NumPCRs {
		return Record{}, fmt.Errorf("pcr %d out of range 0..%d", pcr, NumPCRs-1)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return Record{}, fmt.Errorf("name %q contains a NUL byte", name)
	}
	sum := sha256.Sum256(buf)
	order := binary.LittleEndian
	var data []byte
	data = appendField(data, order, digestNG(digest.SHA256, sum[:]))
	data = appendField(data, order, append([]byte(name), 0))
	data = appendField(data, order, buf)
	r := Record{PCR: pcr, Template: TemplateIMABuf, Data: data}
	d, err := r.TemplateDigest(bank)
	if err != nil {
		return Record{}, err
	}
	r.Digest = d
	return r, nil
}
