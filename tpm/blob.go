// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"encoding/binary"
	"fmt"
)

// maxTPMBlob bounds the TPM2B_PUBLIC and TPM2B_PRIVATE contents a blob may
// hold; real ones are a few hundred bytes.
const maxTPMBlob = 2048

// srkECCP256 identifies the parent of a blob: the SRK made from the
// standard ECC P-256 template (see srk.go). The only parent so far.
const srkECCP256 = 1

// reader is a strict big-endian reader for the blob formats: every read
// past the end, and any trailing byte at done, is an error.
type reader struct {
	what string
	b    []byte
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = &FormatError{What: r.what, Reason: fmt.Sprintf(format, args...)}
	}
}

func (r *reader) bytes(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated in %s", field)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(field string) byte {
	if b := r.bytes(1, field); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(field string) uint16 {
	if b := r.bytes(2, field); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// sized reads a uint16-length-prefixed field of 1..maxTPMBlob bytes and
// returns a copy.
func (r *reader) sized(field string) []byte {
	n := int(r.u16(field + " size"))
	if r.err == nil && (n == 0 || n > maxTPMBlob) {
		r.fail("%s of %d bytes (1-%d)", field, n, maxTPMBlob)
		return nil
	}
	return append([]byte(nil), r.bytes(n, field)...)
}

// header reads what every blob starts with: its magic, its format
// version and its parent (the only one so far: srkECCP256). A wrong magic
// or version is returned at once, as a blob of another kind or format; a
// wrong parent fails r.
func (r *reader) header(magic string, version byte) error {
	if m := r.bytes(len(magic), "magic"); r.err == nil && string(m) != magic {
		return &FormatError{What: r.what, Reason: "not a " + r.what + " (bad magic)"}
	}
	if v := r.u8("version"); r.err == nil && v != version {
		return &FormatError{What: r.what, Reason: fmt.Sprintf("unsupported version %d", v)}
	}
	if p := r.u8("parent"); r.err == nil && p != srkECCP256 {
		r.fail("unknown parent %d", p)
	}
	return nil
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

func appendSized(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}
