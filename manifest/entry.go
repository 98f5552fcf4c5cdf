// SPDX-License-Identifier: Apache-2.0

// Package manifest is the signed tree manifest: a canonical, line-oriented
// record of every entry of one or more directory trees (path, type, mode,
// owner, group, size, content digest, symlink target, device numbers,
// selected xattrs), signed with the same keys as security.ima labels, and
// the comparison of a manifest with a tree that names every added, removed
// and changed entry and each changed attribute. docs/manifest.md is the
// format's reference.
//
// The format and the comparison are pure; Scan (scan.go) is the I/O edge
// that reads a tree through directory file descriptors.
package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Type is an entry's file type, one letter in the format.
type Type byte

// The entry types.
const (
	TypeFile    Type = 'f'
	TypeDir     Type = 'd'
	TypeSymlink Type = 'l'
	TypeChar    Type = 'c'
	TypeBlock   Type = 'b'
	TypeFIFO    Type = 'p'
	TypeSocket  Type = 's'
)

func (t Type) valid() bool {
	switch t {
	case TypeFile, TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFIFO, TypeSocket:
		return true
	}
	return false
}

// String names the type as a report shows it.
func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeChar:
		return "char-device"
	case TypeBlock:
		return "block-device"
	case TypeFIFO:
		return "fifo"
	case TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("type(%q)", byte(t))
}

// Attrs is a set of the attributes an entry records and a check compares.
// The type is always recorded.
type Attrs uint16

// The attributes, by the names rules and reports use.
const (
	AttrMode    Attrs = 1 << iota // permission bits, setuid, setgid, sticky
	AttrOwner                     // uid
	AttrGroup                     // gid
	AttrSize                      // size of regular files
	AttrContent                   // content digest of regular files
	AttrTarget                    // symlink target
	AttrDevice                    // device numbers of device nodes
	AttrXattrs                    // the selected extended attributes

	AttrAll = AttrMode | AttrOwner | AttrGroup | AttrSize | AttrContent | AttrTarget | AttrDevice | AttrXattrs
)

var attrNames = []struct {
	a    Attrs
	name string
}{
	{AttrContent, "content"}, {AttrMode, "mode"}, {AttrOwner, "owner"}, {AttrGroup, "group"},
	{AttrSize, "size"}, {AttrTarget, "target"}, {AttrDevice, "device"}, {AttrXattrs, "xattrs"},
}

// ParseAttr returns the attribute named name ("all" is every attribute).
func ParseAttr(name string) (Attrs, bool) {
	if name == "all" {
		return AttrAll, true
	}
	for _, n := range attrNames {
		if n.name == name {
			return n.a, true
		}
	}
	return 0, false
}

// String lists the attributes by name, comma-separated.
func (a Attrs) String() string {
	if a == AttrAll {
		return "all"
	}
	var names []string
	for _, n := range attrNames {
		if a&n.a != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "type"
	}
	return strings.Join(names, ",")
}

// Xattr is one extended attribute of an entry.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one file-system object of a tree. Path is relative to its
// root and starts with "/" ("/" is the root itself); it holds the name's
// bytes as they are, whatever they are. Has says which attributes the
// entry records: the others are not compared.
type Entry struct {
	Path string
	Type Type
	Has  Attrs

	Mode         uint32 // 07777 bits
	UID, GID     uint32
	Size         int64
	Digest       []byte // regular files
	Target       string // symlinks
	Major, Minor uint32 // device nodes
	Xattrs       []Xattr
}

// recordable reports which attributes an entry of type t can have.
func recordable(t Type) Attrs {
	a := AttrMode | AttrOwner | AttrGroup | AttrXattrs
	switch t {
	case TypeFile:
		a |= AttrSize | AttrContent
	case TypeSymlink:
		a |= AttrTarget
	case TypeChar, TypeBlock:
		a |= AttrDevice
	}
	return a
}

// Errors of the format.
var (
	// ErrMalformed wraps every syntax error of a manifest.
	ErrMalformed = errors.New("malformed manifest")
	// ErrSignature is returned when a manifest's signature does not verify.
	ErrSignature = errors.New("manifest signature does not verify")
	// ErrChanged is returned when a manifest changed while it was read.
	ErrChanged = errors.New("manifest changed while it was read")
)

func malformed(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrMalformed, line, fmt.Sprintf(format, args...))
}

// needsEscape reports whether byte c is written as %XX: controls, space,
// '%', DEL and every byte above 0x7e, and in xattr names also ',' and '='.
func needsEscape(c byte, inName bool) bool {
	return c <= ' ' || c >= 0x7f || c == '%' || (inName && (c == ',' || c == '='))
}

const hexUpper = "0123456789ABCDEF"

// AppendEscaped appends s with every byte that needsEscape as %XX
// (upper-case hex). The result is printable ASCII without spaces, and each
// string has exactly one escaped form.
func AppendEscaped(dst []byte, s string) []byte { return appendEscaped(dst, s, false) }

func appendEscaped(dst []byte, s string, inName bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c, inName) {
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// Escape returns the escaped form of s (AppendEscaped).
func Escape(s string) string { return string(AppendEscaped(nil, s)) }

// Unescape reverses Escape. It accepts only the canonical form: upper-case
// hex, and only bytes that must be escaped.
func Unescape(s string) (string, error) { return unescape(s, false) }

func unescape(s string, inName bool) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		for i := 0; i < len(s); i++ {
			if needsEscape(s[i], inName) {
				return "", fmt.Errorf("byte 0x%02x not escaped", s[i])
			}
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if needsEscape(c, inName) {
				return "", fmt.Errorf("byte 0x%02x not escaped", c)
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated %-escape")
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("bad %%-escape %q", s[i:i+3])
		}
		v := byte(hi<<4 | lo)
		if !needsEscape(v, inName) {
			return "", fmt.Errorf("%%-escape %q of a byte that needs none", s[i:i+3])
		}
		b = append(b, v)
		i += 2
	}
	return string(b), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// ComparePaths orders entry paths as a depth-first walk with names in byte
// order visits them: byte order, except that '/' comes before every other
// byte ("/a", "/a/b", "/a.b").
func ComparePaths(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// validPath reports whether p is a path the format allows: "/", or "/"
// followed by non-empty names without NUL, none of them "." or "..".
func validPath(p string) bool {
	if p == "/" {
		return true
	}
	if len(p) < 2 || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	for _, name := range strings.Split(p[1:], "/") {
		if name == "" || name == "." || name == ".." {
			return false
		}
	}
	return true
}

const untracked = "-"

// appendEntry appends e's line (with its newline) in the format.
func appendEntry(b []byte, e *Entry) []byte {
	b = AppendEscaped(b, e.Path)
	b = append(b, ' ', byte(e.Type), ' ')
	b = appendField(b, e.Has&AttrMode != 0, func(b []byte) []byte {
		return fmt.Appendf(b, "%04o", e.Mode&0o7777)
	})
	b = append(b, ' ')
	b = appendField(b, e.Has&AttrOwner != 0, func(b []byte) []byte { return strconv.AppendUint(b, uint64(e.UID), 10) })
	b = append(b, ' ')
	b = appendField(b, e.Has&AttrGroup != 0, func(b []byte) []byte { return strconv.AppendUint(b, uint64(e.GID), 10) })
	b = append(b, ' ')
	b = appendField(b, e.Has&AttrSize != 0, func(b []byte) []byte { return strconv.AppendInt(b, e.Size, 10) })
	b = append(b, ' ')
	switch e.Type {
	case TypeFile:
		b = appendField(b, e.Has&AttrContent != 0, func(b []byte) []byte { return hex.AppendEncode(b, e.Digest) })
	case TypeSymlink:
		b = appendField(b, e.Has&AttrTarget != 0, func(b []byte) []byte { return AppendEscaped(b, e.Target) })
	case TypeChar, TypeBlock:
		b = appendField(b, e.Has&AttrDevice != 0, func(b []byte) []byte { return fmt.Appendf(b, "%d:%d", e.Major, e.Minor) })
	default:
		b = append(b, untracked...)
	}
	b = append(b, ' ')
	switch {
	case e.Has&AttrXattrs == 0:
		b = append(b, untracked...)
	case len(e.Xattrs) == 0:
		b = append(b, "{}"...)
	default:
		for i, x := range e.Xattrs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEscaped(b, x.Name, true)
			b = append(b, '=')
			b = base64.StdEncoding.AppendEncode(b, x.Value)
		}
	}
	return append(b, '\n')
}

func appendField(b []byte, has bool, f func([]byte) []byte) []byte {
	if !has {
		return append(b, untracked...)
	}
	return f(b)
}

// parseEntry parses one entry line (without its newline). digestSize is
// the manifest's digest length.
func parseEntry(line []byte, lineNo, digestSize int) (*Entry, error) {
	fields := bytes.Split(line, []byte{' '})
	if len(fields) != 8 {
		return nil, malformed(lineNo, "entry has %d fields, want 8", len(fields))
	}
	path, err := Unescape(string(fields[0]))
	if err != nil {
		return nil, malformed(lineNo, "path: %v", err)
	}
	if !validPath(path) {
		return nil, malformed(lineNo, "path %q is not a clean path below the root", path)
	}
	if len(fields[1]) != 1 || !Type(fields[1][0]).valid() {
		return nil, malformed(lineNo, "unknown type %q", fields[1])
	}
	e := &Entry{Path: path, Type: Type(fields[1][0])}
	if path == "/" && e.Type != TypeDir {
		return nil, malformed(lineNo, "the root is a %s, not a directory", e.Type)
	}
	can := recordable(e.Type)
	num := func(i int, a Attrs, bits int, set func(uint64)) error {
		f := string(fields[i])
		if f == untracked {
			return nil
		}
		if can&a == 0 {
			return malformed(lineNo, "a %s has no %s", e.Type, a)
		}
		base := 10
		if a == AttrMode {
			base = 8
			if len(f) != 4 {
				return malformed(lineNo, "mode %q: want 4 octal digits", f)
			}
		} else if len(f) > 1 && f[0] == '0' || len(f) == 0 || f[0] == '+' || f[0] == '-' {
			return malformed(lineNo, "%s %q is not a canonical number", a, f)
		}
		v, err := strconv.ParseUint(f, base, bits)
		if err != nil {
			return malformed(lineNo, "%s %q: %v", a, f, err)
		}
		e.Has |= a
		set(v)
		return nil
	}
	if err := num(2, AttrMode, 12, func(v uint64) { e.Mode = uint32(v) }); err != nil {
		return nil, err
	}
	if err := num(3, AttrOwner, 32, func(v uint64) { e.UID = uint32(v) }); err != nil {
		return nil, err
	}
	if err := num(4, AttrGroup, 32, func(v uint64) { e.GID = uint32(v) }); err != nil {
		return nil, err
	}
	if err := num(5, AttrSize, 63, func(v uint64) { e.Size = int64(v) }); err != nil {
		return nil, err
	}
	if err := parseData(e, string(fields[6]), lineNo, digestSize); err != nil {
		return nil, err
	}
	if err := parseXattrs(e, string(fields[7]), lineNo); err != nil {
		return nil, err
	}
	return e, nil
}

func parseData(e *Entry, f string, lineNo, digestSize int) error {
	if f == untracked {
		return nil
	}
	switch e.Type {
	case TypeFile:
		d, err := hex.DecodeString(f)
		if err != nil || len(d) != digestSize || f != hex.EncodeToString(d) {
			return malformed(lineNo, "digest %q: want %d bytes in lower-case hex", f, digestSize)
		}
		e.Digest, e.Has = d, e.Has|AttrContent
	case TypeSymlink:
		t, err := Unescape(f)
		if err != nil {
			return malformed(lineNo, "symlink target: %v", err)
		}
		if t == "" || strings.IndexByte(t, 0) >= 0 {
			return malformed(lineNo, "empty or NUL symlink target")
		}
		e.Target, e.Has = t, e.Has|AttrTarget
	case TypeChar, TypeBlock:
		maj, mnr, ok := strings.Cut(f, ":")
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(mnr, 10, 32)
		if !ok || err1 != nil || err2 != nil || strconv.FormatUint(a, 10) != maj || strconv.FormatUint(b, 10) != mnr {
			return malformed(lineNo, "device %q: want MAJOR:MINOR", f)
		}
		e.Major, e.Minor, e.Has = uint32(a), uint32(b), e.Has|AttrDevice
	default:
		return malformed(lineNo, "a %s has no data field (want %q)", e.Type, untracked)
	}
	return nil
}

func parseXattrs(e *Entry, f string, lineNo int) error {
	switch f {
	case untracked:
		return nil
	case "{}":
		e.Has |= AttrXattrs
		return nil
	}
	e.Has |= AttrXattrs
	for _, kv := range strings.Split(f, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return malformed(lineNo, "xattr %q: want NAME=BASE64", kv)
		}
		name, err := unescape(k, true)
		if err != nil || name == "" {
			return malformed(lineNo, "xattr name %q: %v", k, err)
		}
		val, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil || base64.StdEncoding.EncodeToString(val) != v {
			return malformed(lineNo, "xattr %s: value is not canonical base64", name)
		}
		if n := len(e.Xattrs); n > 0 && e.Xattrs[n-1].Name >= name {
			return malformed(lineNo, "xattrs not in strictly increasing name order at %q", name)
		}
		e.Xattrs = append(e.Xattrs, Xattr{Name: name, Value: val})
	}
	return nil
}
