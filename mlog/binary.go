// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"encoding/binary"
	"fmt"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/readfile"
)

// Options describe how a binary list is encoded.
type Options struct {
	// Bank is the algorithm of the stored template digests: SHA-1 for the
	// kernel's binary_runtime_measurements (and _sha1), SHA-256 for
	// binary_runtime_measurements_sha256, and so on. The zero value (MD4,
	// never a PCR bank) means SHA-1.
	Bank digest.Algo
	// BigEndian reads and writes the integers big-endian, as a big-endian
	// kernel without ima_canonical_fmt writes them. The default is
	// little-endian.
	BigEndian bool
}

func (o Options) bank() digest.Algo {
	if o.Bank == digest.MD4 {
		return digest.SHA1
	}
	return o.Bank
}

// Limits on what a record may claim, so that a corrupt length is reported
// where it is instead of being believed.
const (
	maxTemplateName = 255      // the longest custom format string is shorter
	maxTemplateData = 64 << 20 // far above any kernel record (certificates, modsig)
)

// List is a parsed measurement list. Its records are unverified until
// replayed against trusted PCR values with Replay.
type List struct {
	bank      digest.Algo
	bigEndian bool
	records   []Record
}

// NewList returns an empty list whose template digests are of bank.
func NewList(opts Options) *List {
	return &List{bank: opts.bank(), bigEndian: opts.BigEndian}
}

// Bank returns the algorithm of the list's stored template digests.
func (l *List) Bank() digest.Algo { return l.bank }

// Len returns the number of records.
func (l *List) Len() int { return len(l.records) }

// UnverifiedRecords returns the records as parsed: nothing vouches for
// them. Use Replay for records checked against trusted PCR values. The
// slice is the list's own; do not modify it.
func (l *List) UnverifiedRecords() []Record { return l.records }

// Add appends a record to the list (in memory). The record's digest must
// be of the list's bank and its byte order the list's.
func (l *List) Add(r Record) error {
	if len(r.Digest) != l.bank.Size() {
		return fmt.Errorf("record digest of %d bytes in a %s list", len(r.Digest), l.bank)
	}
	if r.bigEndian != l.bigEndian {
		return fmt.Errorf("record byte order differs from the list's")
	}
	l.records = append(l.records, r)
	return nil
}

// ParseBinary parses a binary measurement list. The records refer to b.
// An error is a *ParseError naming the offset of the bad item.
func ParseBinary(b []byte, opts Options) (*List, error) {
	l := NewList(opts)
	dsize := l.bank.Size()
	if dsize == 0 {
		return nil, fmt.Errorf("unknown bank %s", l.bank)
	}
	l.records = make([]Record, 0, len(b)/96+1)
	var order byteOrder = binary.LittleEndian
	if opts.BigEndian {
		order = binary.BigEndian
	}
	off := 0
	for off < len(b) {
		r, n, err := parseRecord(b[off:], order, dsize)
		if err != nil {
			err.Offset += int64(off)
			err.Record = len(l.records)
			return nil, err
		}
		r.bigEndian = opts.BigEndian
		l.records = append(l.records, r)
		off += n
	}
	return l, nil
}

func perr(off int, format string, args ...any) *ParseError {
	return &ParseError{Offset: int64(off), Msg: fmt.Sprintf(format, args...)}
}

// parseRecord parses one record at the start of b and returns its size.
// Offsets in the error are relative to b.
func parseRecord(b []byte, order byteOrder, dsize int) (Record, int, *ParseError) {
	var r Record
	if len(b) < 4+dsize+4 {
		return r, 0, perr(0, "truncated record: %d bytes left, a record header needs %d", len(b), 4+dsize+4)
	}
	pcr := order.Uint32(b)
	if pcr >= NumPCRs {
		return r, 0, perr(0, "implausible pcr index %d (0x%08x); wrong byte order or not a measurement list?", pcr, pcr)
	}
	r.PCR = int(pcr)
	r.Digest = b[4 : 4+dsize : 4+dsize]
	off := 4 + dsize
	nlen := order.Uint32(b[off:])
	if nlen == 0 || nlen > maxTemplateName {
		return r, 0, perr(off, "implausible template name length %d (0x%08x), want 1..%d; wrong bank (digest size %d) or not the kernel's layout?", nlen, nlen, maxTemplateName, dsize)
	}
	off += 4
	if uint64(len(b)-off) < uint64(nlen) {
		return r, 0, perr(off, "template name of %d bytes runs past the end (%d bytes left)", nlen, len(b)-off)
	}
	name := b[off : off+int(nlen)]
	if !printable(name) {
		return r, 0, perr(off, "template name %q is not printable text", name)
	}
	r.Template = internTemplate(name)
	off += int(nlen)
	if r.Template == TemplateIMA {
		return parseIMAData(b, off, r, order)
	}
	if len(b)-off < 4 {
		return r, 0, perr(off, "truncated record: no template data length")
	}
	dlen := order.Uint32(b[off:])
	if dlen > maxTemplateData || uint64(dlen) > uint64(len(b)-off-4) {
		return r, 0, perr(off, "implausible template data length %d (0x%08x): %d bytes left", dlen, dlen, len(b)-off-4)
	}
	off += 4
	r.Data = b[off : off+int(dlen) : off+int(dlen)]
	if ids := templateFields(r.Template); ids != nil {
		if err := checkFields(r.Data, order, len(ids)); err != "" {
			return r, 0, perr(off, "template %s: %s", r.Template, err)
		}
	}
	return r, off + int(dlen), nil
}

// parseIMAData reads template ima's data: d[20] || u32 len || name.
func parseIMAData(b []byte, off int, r Record, order byteOrder) (Record, int, *ParseError) {
	if len(b)-off < 24 {
		return r, 0, perr(off, "truncated template ima data")
	}
	n := order.Uint32(b[off+20:])
	if n > maxIMAName || uint64(n) > uint64(len(b)-off-24) {
		return r, 0, perr(off+20, "implausible template ima name length %d (0x%08x): %d bytes left, at most %d allowed", n, n, len(b)-off-24, maxIMAName)
	}
	end := off + 24 + int(n)
	r.Data = b[off:end:end]
	return r, end, nil
}

// checkFields checks that data is exactly want length-prefixed fields.
func checkFields(data []byte, order byteOrder, want int) string {
	n := 0
	for off := 0; off < len(data); n++ {
		if len(data)-off < 4 {
			return fmt.Sprintf("truncated length of field %d", n)
		}
		flen := order.Uint32(data[off:])
		if uint64(flen) > uint64(len(data)-off-4) {
			return fmt.Sprintf("field %d length %d exceeds the %d bytes of data left", n, flen, len(data)-off-4)
		}
		off += 4 + int(flen)
	}
	if n != want {
		return fmt.Sprintf("%d fields, want %d", n, want)
	}
	return ""
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// internTemplate returns the template name without allocating for the
// built-in ones.
func internTemplate(b []byte) string {
	switch string(b) {
	case TemplateIMANG:
		return TemplateIMANG
	case TemplateIMASig:
		return TemplateIMASig
	case TemplateIMA:
		return TemplateIMA
	case TemplateIMABuf:
		return TemplateIMABuf
	case TemplateIMANGv2:
		return TemplateIMANGv2
	case TemplateIMASigv2:
		return TemplateIMASigv2
	case TemplateIMAModsig:
		return TemplateIMAModsig
	case TemplateEVMSig:
		return TemplateEVMSig
	}
	return string(b)
}

// AppendBinary appends the record in the binary list format, with its
// own byte order, to dst.
func (r *Record) AppendBinary(dst []byte) []byte {
	order := r.order()
	dst = order.AppendUint32(dst, uint32(r.PCR))
	dst = append(dst, r.Digest...)
	dst = order.AppendUint32(dst, uint32(len(r.Template)))
	dst = append(dst, r.Template...)
	if r.Template != TemplateIMA {
		dst = order.AppendUint32(dst, uint32(len(r.Data)))
	}
	return append(dst, r.Data...)
}

// MarshalBinary returns the list in the kernel's binary format.
func (l *List) MarshalBinary() ([]byte, error) {
	var dst []byte
	for i := range l.records {
		dst = l.records[i].AppendBinary(dst)
	}
	return dst, nil
}

// ReadFile reads a list from a file, binary or ASCII (detected from the
// first bytes), such as the kernel's securityfs lists. Errors name path.
// For a binary list whose file name ends in _<algo>
// (binary_runtime_measurements_sha256) and opts.Bank unset, the bank is
// taken from the name.
func ReadFile(path string, opts Options) (*List, error) {
	// securityfs files report size 0: read to EOF, at most readfile.List
	// bytes (a device such as /dev/zero is refused unread).
	b, err := readfile.Read(path, readfile.List)
	if err != nil {
		return nil, err
	}
	if opts.Bank == digest.MD4 {
		opts.Bank = bankFromName(path)
	}
	var l *List
	if looksASCII(b) {
		l, err = ParseASCII(b, opts)
	} else {
		l, err = ParseBinary(b, opts)
	}
	if err != nil {
		if pe, ok := err.(*ParseError); ok {
			pe.File = path
			return nil, pe
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// bankFromName returns the bank named by a _<algo> suffix (the kernel's
// per-bank files), or MD4 (unset) when there is none.
func bankFromName(path string) digest.Algo {
	for i := len(path) - 1; i >= 0 && path[i] != '/'; i-- {
		if path[i] == '_' {
			if a, err := digest.ParseAlgo(path[i+1:]); err == nil && a.Size() > 0 {
				return a
			}
			break
		}
	}
	return digest.MD4
}

// looksASCII reports whether b starts like an ASCII list ("10 " or " 9 "):
// a binary list starts with a u32 PCR index below 24, so its first bytes
// are never two ASCII digits or a space and a digit.
func looksASCII(b []byte) bool {
	if len(b) < 3 {
		return false
	}
	d := func(c byte) bool { return c >= '0' && c <= '9' }
	return (d(b[0]) || b[0] == ' ') && d(b[1]) && b[2] == ' '
}
