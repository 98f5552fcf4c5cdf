// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/sig"
)

// Magic is the first line of every manifest of this version.
const Magic = "intact-manifest 1"

// signContext is hashed before the body, so that a manifest signature is
// never the signature of a file's content that someone signed as a label.
const signContext = "intact-manifest-v1 signature\x00"

// MaxLine bounds one line of a manifest (a path and a symlink target of
// 4096 bytes each, escaped, and several 64 KiB xattr values fit).
const MaxLine = 1 << 20

// DefaultXattrs are the extended attributes a manifest records unless told
// otherwise.
var DefaultXattrs = []string{"security.capability", "security.evm", "security.ima", "security.selinux"}

// Header is what a manifest says before its entries.
type Header struct {
	Algo   digest.Algo
	Xattrs []string // sorted, no duplicates
	Rules  []string // the rule lines the manifest was made with (rules.go)
	// CrossFS records that the walk descended into other file systems
	// mounted below the roots ("filesystems all"); a check walks the same.
	CrossFS bool
}

// Manifest is what Parse learned of a whole manifest.
type Manifest struct {
	Header
	Roots     []string
	Count     int              // entries
	Signature *label.Signature // the trailer
	digest    []byte           // of signContext and the body, with Algo
}

// Writer writes a manifest: Root, then that root's entries in ComparePaths
// order, for each root in byte order; then Sign.
type Writer struct {
	w        *bufio.Writer
	h        hash.Hash
	hdr      Header
	root     string
	last     string
	count    int
	haveRoot bool
	buf      []byte
}

// NewWriter writes hdr to w and returns a Writer for the rest.
func NewWriter(w io.Writer, hdr Header) (*Writer, error) {
	ch, ok := hdr.Algo.CryptoHash()
	if !ok || hdr.Algo == digest.MD5 || hdr.Algo == digest.SHA1 {
		return nil, fmt.Errorf("manifest: hash algorithm %s not allowed (sha256 or stronger)", hdr.Algo)
	}
	if !slices.IsSorted(hdr.Xattrs) || len(slices.Compact(slices.Clone(hdr.Xattrs))) != len(hdr.Xattrs) {
		return nil, errors.New("manifest: xattr names must be sorted and distinct")
	}
	mw := &Writer{w: bufio.NewWriterSize(w, 256<<10), h: ch.New(), hdr: hdr}
	mw.h.Write([]byte(signContext))
	b := fmt.Appendf(nil, "%s\nhash %s\nxattrs ", Magic, hdr.Algo)
	if len(hdr.Xattrs) == 0 {
		b = append(b, untracked...)
	}
	for i, x := range hdr.Xattrs {
		if x == "" {
			return nil, errors.New("manifest: empty xattr name")
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEscaped(b, x, true)
	}
	b = append(b, "\nfilesystems "...)
	if hdr.CrossFS {
		b = append(b, "all\n"...)
	} else {
		b = append(b, "one\n"...)
	}
	for _, r := range hdr.Rules {
		b = append(b, "rule "...)
		b = AppendEscaped(b, r)
		b = append(b, '\n')
	}
	return mw, mw.write(b)
}

func (w *Writer) write(b []byte) error {
	w.h.Write(b)
	_, err := w.w.Write(b)
	return err
}

// Root starts the entries of the tree at path (absolute, clean). Roots
// come in increasing byte order and none is inside another.
func (w *Writer) Root(path string) error {
	if !strings.HasPrefix(path, "/") || (path != "/" && !validPath(path)) {
		return fmt.Errorf("manifest: root %q is not a clean absolute path", path)
	}
	if w.haveRoot && (path <= w.root || isBelow(path, w.root)) {
		return fmt.Errorf("manifest: root %q after %q: roots are sorted and do not nest", path, w.root)
	}
	w.root, w.haveRoot, w.last = path, true, ""
	return w.write(append(AppendEscaped([]byte("root "), path), '\n'))
}

// isBelow reports whether p is below (or is) the directory dir.
func isBelow(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Add writes e, the next entry of the current root.
func (w *Writer) Add(e *Entry) error {
	if !w.haveRoot {
		return errors.New("manifest: entry before a root")
	}
	if !validPath(e.Path) || !e.Type.valid() {
		return fmt.Errorf("manifest: bad entry %q", e.Path)
	}
	if w.last == "" && e.Path != "/" {
		return fmt.Errorf("manifest: the first entry of root %q is %q, not the root itself", w.root, e.Path)
	}
	if w.last != "" && ComparePaths(w.last, e.Path) >= 0 {
		return fmt.Errorf("manifest: entry %q after %q: out of order", e.Path, w.last)
	}
	e.Has &= recordable(e.Type)
	w.last = e.Path
	w.count++
	w.buf = appendEntry(w.buf[:0], e)
	if len(w.buf) > MaxLine {
		return fmt.Errorf("manifest: entry %q: line of %d bytes exceeds %d", e.Path, len(w.buf), MaxLine)
	}
	return w.write(w.buf)
}

// Sign ends the manifest: the entry count, then the signature of
// everything before it, made with signer under keyID.
func (w *Writer) Sign(signer crypto.Signer, keyID uint32) error {
	if err := w.write(fmt.Appendf(nil, "end %d\n", w.count)); err != nil {
		return err
	}
	s, err := sig.SignDigest(signer, keyID, w.hdr.Algo, w.h.Sum(nil))
	if err != nil {
		return fmt.Errorf("signing the manifest: %w", err)
	}
	b := base64.StdEncoding.AppendEncode([]byte("signature "), s.Marshal())
	if _, err := w.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return w.w.Flush()
}

// Parse reads a whole manifest from r, checking its syntax, the order of
// roots and entries and the count, and calls fn (if not nil) with each
// entry and its root. It does not verify the signature: see Verify. An
// error from fn stops it and is returned.
func Parse(r io.Reader, fn func(root string, e *Entry) error) (*Manifest, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	m := &Manifest{}
	lineNo := 0
	var h hash.Hash
	readLine := func() ([]byte, error) {
		lineNo++
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// a long line: gather it, within MaxLine
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				buf = append(buf, line...)
				if len(buf) > MaxLine {
					return nil, malformed(lineNo, "line longer than %d bytes", MaxLine)
				}
			}
			line = buf
		}
		if err == io.EOF {
			if len(line) == 0 {
				return nil, malformed(lineNo, "unexpected end of manifest (truncated?)")
			}
			return nil, malformed(lineNo, "last line has no newline (truncated?)")
		}
		if err != nil {
			return nil, err
		}
		if h != nil {
			h.Write(line)
		}
		return line[:len(line)-1], nil
	}
	keyword := func(line []byte, kw string) (string, bool) {
		rest, ok := bytes.CutPrefix(line, []byte(kw+" "))
		return string(rest), ok
	}

	line, err := readLine()
	if err != nil {
		return nil, err
	}
	if string(line) != Magic {
		return nil, malformed(1, "not an intact manifest (want %q)", Magic)
	}
	line, err = readLine()
	if err != nil {
		return nil, err
	}
	name, ok := keyword(line, "hash")
	if !ok {
		return nil, malformed(lineNo, "want \"hash ALGO\"")
	}
	if m.Algo, err = digest.ParseAlgo(name); err != nil || m.Algo == digest.MD5 || m.Algo == digest.SHA1 || m.Algo.String() != name {
		return nil, malformed(lineNo, "hash algorithm %q not allowed", name)
	}
	ch, _ := m.Algo.CryptoHash()
	h = ch.New()
	h.Write([]byte(signContext))
	h.Write([]byte(Magic + "\n" + "hash " + name + "\n"))
	digestSize := m.Algo.Size()

	line, err = readLine()
	if err != nil {
		return nil, err
	}
	xs, ok := keyword(line, "xattrs")
	if !ok {
		return nil, malformed(lineNo, "want \"xattrs NAMES\"")
	}
	if xs != untracked {
		for _, x := range strings.Split(xs, ",") {
			n, err := unescape(x, true)
			if err != nil || n == "" {
				return nil, malformed(lineNo, "xattr name %q: %v", x, err)
			}
			if len(m.Xattrs) > 0 && m.Xattrs[len(m.Xattrs)-1] >= n {
				return nil, malformed(lineNo, "xattr names not sorted and distinct")
			}
			m.Xattrs = append(m.Xattrs, n)
		}
	}

	line, err = readLine()
	if err != nil {
		return nil, err
	}
	switch string(line) {
	case "filesystems one":
	case "filesystems all":
		m.CrossFS = true
	default:
		return nil, malformed(lineNo, "want \"filesystems one\" or \"filesystems all\"")
	}

	var root, last string
	for {
		line, err = readLine()
		if err != nil {
			return nil, err
		}
		if len(line) > 0 && line[0] == '/' {
			if root == "" {
				return nil, malformed(lineNo, "entry before a root")
			}
			e, err := parseEntry(line, lineNo, digestSize)
			if err != nil {
				return nil, err
			}
			if last == "" && e.Path != "/" {
				return nil, malformed(lineNo, "root %q does not start with its own entry \"/\"", root)
			}
			if last != "" && ComparePaths(last, e.Path) >= 0 {
				return nil, malformed(lineNo, "entry %q out of order (after %q)", Escape(e.Path), Escape(last))
			}
			last = e.Path
			m.Count++
			if fn != nil {
				if err := fn(root, e); err != nil {
					return nil, err
				}
			}
			continue
		}
		if v, ok := keyword(line, "rule"); ok {
			if root != "" {
				return nil, malformed(lineNo, "rule after the first root")
			}
			r, err := Unescape(v)
			if err != nil {
				return nil, malformed(lineNo, "rule: %v", err)
			}
			m.Rules = append(m.Rules, r)
			continue
		}
		if v, ok := keyword(line, "root"); ok {
			p, err := Unescape(v)
			if err != nil || !strings.HasPrefix(p, "/") || (p != "/" && !validPath(p)) {
				return nil, malformed(lineNo, "root %q is not a clean absolute path", v)
			}
			if root != "" && last == "" {
				return nil, malformed(lineNo, "root %q has no entries", root)
			}
			if root != "" && (p <= root || isBelow(p, root)) {
				return nil, malformed(lineNo, "root %q after %q: roots are sorted and do not nest", p, root)
			}
			root, last = p, ""
			m.Roots = append(m.Roots, p)
			continue
		}
		if v, ok := keyword(line, "end"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n != m.Count || strconv.Itoa(n) != v {
				return nil, malformed(lineNo, "end count %q, but %d entries were read", v, m.Count)
			}
			if root != "" && last == "" {
				return nil, malformed(lineNo, "root %q has no entries", root)
			}
			break
		}
		return nil, malformed(lineNo, "unexpected line %q", truncate(line))
	}
	m.digest = h.Sum(nil)
	h = nil
	line, err = readLine()
	if err != nil {
		return nil, err
	}
	v, ok := keyword(line, "signature")
	if !ok {
		return nil, malformed(lineNo, "want \"signature BASE64\" after end")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(v)
	if err != nil {
		return nil, malformed(lineNo, "signature: %v", err)
	}
	if m.Signature, err = label.ParseSignature(raw); err != nil {
		return nil, malformed(lineNo, "signature: %v", err)
	}
	if m.Signature.Algo != m.Algo {
		return nil, malformed(lineNo, "signature uses %s, the manifest %s", m.Signature.Algo, m.Algo)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, malformed(lineNo+1, "data after the signature")
	}
	return m, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// checkSignature verifies m's signature with the certificates in keys.
func (m *Manifest) checkSignature(keys *sig.Keyring) (*x509.Certificate, error) {
	certs := keys.Lookup(m.Signature.KeyID)
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no trusted certificate has keyid %08x", ErrSignature, m.Signature.KeyID)
	}
	var last error
	for _, c := range certs {
		if last = sig.VerifyDigest(c.PublicKey, m.Signature.Algo, m.digest, m.Signature.Sig); last == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrSignature, last)
}

// Verified is a manifest whose signature verified. Its entries are read
// again by Entries, which fails if the bytes changed since.
type Verified struct {
	*Manifest
	Cert *x509.Certificate // that verified the signature
	r    io.ReadSeeker
}

// Verify reads the manifest in r, checks it and verifies its signature
// with keys. Nothing of an unverified manifest reaches the caller but the
// error.
func Verify(r io.ReadSeeker, keys *sig.Keyring) (*Verified, error) {
	m, err := Parse(r, nil)
	if err != nil {
		return nil, err
	}
	c, err := m.checkSignature(keys)
	if err != nil {
		return nil, err
	}
	return &Verified{Manifest: m, Cert: c, r: r}, nil
}

// Entries reads the manifest again and calls fn with each entry. It
// returns ErrChanged if the manifest's bytes differ from the verified ones;
// a caller that acts on entries before Entries returns nil must be ready
// to discard what it did (Check buffers its report until then).
func (v *Verified) Entries(fn func(root string, e *Entry) error) error {
	if _, err := v.r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	m, err := Parse(v.r, fn)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return fmt.Errorf("%w: %v", ErrChanged, err)
		}
		return err
	}
	if !bytes.Equal(m.digest, v.digest) || !bytes.Equal(m.Signature.Marshal(), v.Signature.Marshal()) {
		return ErrChanged
	}
	return nil
}
