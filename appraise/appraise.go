// SPDX-License-Identifier: Apache-2.0

// Package appraise decides whether a file is intact: it reads the file's
// security.ima label, recomputes the content digest with the label's
// algorithm, checks a signature against trusted certificates, and returns
// one verdict.
//
// The decision itself (Check) is pure: it takes the label bytes and a way to
// digest the content, so the CLI, the daemon and tests share it.
//
// [Appraiser] is the tree's one appraiser, of files. It hands back what it
// found besides the verdict — the label it judged and the digests it
// computed ([Appraiser.FileAlso] adds the algorithms a caller needs to the
// same read) — so that intactd (whose engine asks an enforce.Inspector,
// adapted from this package in cmd/intactd) measures and audits a file
// without reading it again.
package appraise

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/sig"
)

// Verdict is the outcome of appraising one file.
type Verdict string

// The verdicts. Every verdict but OK is an integrity failure.
const (
	OK             Verdict = "ok"              // the label verifies over the content
	ContentChanged Verdict = "content-changed" // the content does not match the label
	BadSignature   Verdict = "bad-signature"   // the signature was not made by the named key
	UnknownKey     Verdict = "unknown-key"     // no trusted certificate has the label's keyid
	NoLabel        Verdict = "no-label"        // the file has no label
	BadLabel       Verdict = "bad-label"       // the label is malformed (truncated, bad lengths)
	Unsupported    Verdict = "unsupported"     // a label type, version or algorithm intact cannot check
	Unreadable     Verdict = "unreadable"      // the file or its label could not be read
	// MetadataChanged: security.evm does not match the file's owner, mode,
	// protected xattrs or (HMAC, full signature) inode.
	MetadataChanged Verdict = "metadata-changed"
	// Unsigned: the file verifies, but only by a digest label, and a
	// signature is required (Options.RequireSignature, the kernel's
	// appraise_type=imasig).
	Unsigned Verdict = "unsigned"
	// Skipped: the file was not appraised: larger than the size limit, or
	// not a regular file (any more) when opened, or on another file system
	// (a walk's *walk.SkipError).
	Skipped Verdict = "skipped"
)

// Verdicts lists every verdict, for documentation and tests.
var Verdicts = []Verdict{OK, ContentChanged, BadSignature, UnknownKey, NoLabel, BadLabel, Unsupported, Unreadable, MetadataChanged, Unsigned, Skipped}

// Result is the appraisal of one file.
type Result struct {
	Path    string  `json:"path"`
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
	Label   string  `json:"label,omitempty"` // label type: digest, digest-ng, signature, ...
	Algo    string  `json:"algo,omitempty"`
	KeyID   string  `json:"keyid,omitempty"` // 8 hex digits, for signatures
	// Digests are the content digests computed in the appraisal's one
	// read of the content: the label's algorithm first, then those
	// FileAlso asked for. Empty when the content was not read (a
	// verdict reached before it: no label, an unknown key). Callers that
	// also measure or audit the file use them instead of reading it again.
	Digests []digest.Sum `json:"-"`
	// Value is the IMA label judged, as read (nil: none).
	Value []byte `json:"-"`
	EVM   string `json:"evm,omitempty"` // security.evm type checked: hmac, signature, portable-signature
}

// Digest returns the digest with algo, nil if the appraisal computed none.
func (r *Result) Digest(algo digest.Algo) []byte { return digest.Find(r.Digests, algo) }

// OK reports whether the file passed.
func (r *Result) OK() bool { return r.Verdict == OK }

// Options configure an Appraiser.
type Options struct {
	// Keys are the trusted certificates for signature labels.
	Keys *sig.Keyring
	// XattrUser reads user.ima instead of security.ima.
	XattrUser bool
	// RequireSignature fails (Unsigned) a file whose content is vouched
	// for only by a digest label: anyone who can write the file can write
	// a digest. A verified IMA signature, or a verified EVM signature
	// (which covers security.ima), satisfies it.
	RequireSignature bool
	// SigFile reads the IMA label from PATH.sig (a detached signature, as
	// evmctl ima_sign --sigfile writes) instead of the xattr.
	SigFile bool
	// EVM, if set, also checks security.evm (see EVMOptions).
	EVM *EVMOptions
}

// Appraiser appraises files on disk. It is safe for concurrent use.
type Appraiser struct {
	opts Options
}

// New returns an Appraiser.
func New(opts Options) *Appraiser { return &Appraiser{opts: opts} }

// Path appraises the file at path. It never follows a symlink at path and
// never blocks on a FIFO: anything but a regular file is unreadable.
func (a *Appraiser) Path(path string) Result {
	f, err := openNoFollow(path)
	if err != nil {
		return Result{Path: path, Verdict: Unreadable, Reason: errReason(err)}
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Result{Path: path, Verdict: Unreadable, Reason: errReason(err)}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return Result{Path: path, Verdict: Unreadable, Reason: "not a regular file"}
	}
	return a.File(f, path)
}

// File appraises an open regular file, reading its label through the
// descriptor (so that label and content come from the same inode).
func (a *Appraiser) File(f *os.File, path string) Result {
	return a.file(f, path, func() ([]byte, error) { return readSigFile(path + ".sig") }, nil)
}

// FileAlso appraises f as File does and, in the same read of the content,
// also digests it with each algorithm of also (Result.Digests): a caller
// that measures or audits the file with another algorithm than the
// label's does not read it again. When the appraisal does not read the
// content, nothing is digested. An algorithm of also that cannot be
// computed makes the file Unreadable, as an unreadable content does.
func (a *Appraiser) FileAlso(f *os.File, path string, also ...digest.Algo) Result {
	return a.file(f, path, func() ([]byte, error) { return readSigFile(path + ".sig") }, also)
}

// SigDir is the directory a file was opened in, for reading its detached
// signature (Options.SigFile) by name relative to it, not by path
// (walk.Dir).
type SigDir interface {
	ReadFile(name string, max int64) ([]byte, error)
}

// MaxSigFile is the largest detached signature read: the largest value
// an xattr can have.
const MaxSigFile = 64 << 10

// FileIn appraises an open regular file named name in the directory dir:
// with Options.SigFile its detached signature is name+".sig" read through
// dir (not following a symlink, not blocking on a FIFO).
func (a *Appraiser) FileIn(f *os.File, dir SigDir, name, path string) Result {
	return a.file(f, path, func() ([]byte, error) { return dir.ReadFile(name+".sig", MaxSigFile) }, nil)
}

func (a *Appraiser) file(f *os.File, path string, readSig func() ([]byte, error), also []digest.Algo) Result {
	raw, err := a.readLabel(f, readSig)
	if err != nil {
		return Result{Path: path, Verdict: Unreadable, Reason: "reading label: " + errReason(err)}
	}
	var sums []digest.Sum
	r := Check(raw, func(algo digest.Algo) ([]byte, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		algos := []digest.Algo{algo}
		for _, x := range also {
			if !slices.Contains(algos, x) {
				algos = append(algos, x)
			}
		}
		var err error
		if sums, err = digest.FileSums(f, algos...); err != nil {
			return nil, err
		}
		return sums[0].Bytes, nil
	}, a.opts.Keys)
	r.Path, r.Value, r.Digests = path, raw, sums
	if r.Verdict == OK && a.opts.EVM != nil {
		r = a.checkEVM(f, r)
	}
	if r.Verdict == OK && a.opts.RequireSignature && !r.Signed() {
		r.Verdict, r.Reason = Unsigned, "the label is a digest and a signature is required"
	}
	return r
}

// Signed reports whether a signature vouches for the file's content: its
// IMA label is a signature, or its EVM label (checked, and covering
// security.ima) is one.
func (r *Result) Signed() bool {
	sigLabel := label.TypeDigsig.String()
	return r.Label == sigLabel || r.EVM == sigLabel || r.EVM == label.TypePortableDigsig.String()
}

// readLabel returns the file's IMA label, nil if it has none.
func (a *Appraiser) readLabel(f *os.File, readSig func() ([]byte, error)) ([]byte, error) {
	if a.opts.SigFile {
		raw, err := readSig()
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return raw, err
	}
	raw, err := xattr.FGet(f, xattr.IMA(a.opts.XattrUser))
	if errors.Is(err, xattr.ErrNotFound) || errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	return raw, err
}

// Check decides the verdict for a file whose security.ima value is raw
// (nil: no label). content is called at most once, with the label's
// algorithm, to digest the file content; its error makes the file
// Unreadable.
func Check(raw []byte, content func(digest.Algo) ([]byte, error), keys *sig.Keyring) Result {
	if raw == nil {
		return Result{Verdict: NoLabel, Reason: "no security.ima label"}
	}
	l, err := label.ParseIMA(raw)
	switch {
	case errors.Is(err, label.ErrUnsupported):
		return Result{Verdict: Unsupported, Reason: err.Error()}
	case err != nil:
		return Result{Verdict: BadLabel, Reason: err.Error()}
	}
	r := Result{Label: l.Type.String(), Algo: l.Algo.String()}
	if l.SigV1 != nil {
		r.Verdict, r.Reason = Unsupported, "legacy v1 signature"
		return r
	}
	if l.Sig != nil {
		r.KeyID = fmt.Sprintf("%08x", l.Sig.KeyID)
		if l.Sig.Type != label.TypeDigsig || l.Sig.Version != 2 {
			r.Verdict, r.Reason = Unsupported, fmt.Sprintf("%s version %d", l.Sig.Type, l.Sig.Version)
			return r
		}
	}
	if _, ok := l.Algo.CryptoHash(); !ok {
		r.Verdict, r.Reason = Unsupported, "hash algorithm "+l.Algo.String()+" not available"
		return r
	}
	var certs = keysFor(l, keys)
	if l.Sig != nil && len(certs) == 0 {
		r.Verdict, r.Reason = UnknownKey, "no trusted certificate with keyid "+r.KeyID
		return r
	}
	sum, err := content(l.Algo)
	if err != nil {
		r.Verdict, r.Reason = Unreadable, "reading content: "+errReason(err)
		return r
	}
	if l.Sig == nil {
		if !bytes.Equal(sum, l.Digest) {
			r.Verdict, r.Reason = ContentChanged, l.Algo.String()+" digest differs from the label"
			return r
		}
		r.Verdict = OK
		return r
	}
	return checkSignature(r, l.Sig, sum, certs)
}

func keysFor(l *label.IMA, keys *sig.Keyring) []*x509.Certificate {
	if l.Sig == nil {
		return nil
	}
	return keys.Lookup(l.Sig.KeyID)
}

func checkSignature(r Result, s *label.Signature, sum []byte, certs []*x509.Certificate) Result {
	verdict, reason := BadSignature, "signature does not verify with the certificate for keyid "+r.KeyID
	for _, c := range certs {
		err := sig.VerifyDigest(c.PublicKey, s.Algo, sum, s.Sig)
		switch {
		case err == nil:
			r.Verdict, r.Reason = OK, ""
			return r
		case errors.Is(err, sig.ErrDigestMismatch):
			verdict, reason = ContentChanged, "signature is valid but over another "+s.Algo.String()+" digest: the content changed or the label belongs to another file"
		case errors.Is(err, sig.ErrUnsupportedKey):
			if verdict != ContentChanged {
				verdict, reason = Unsupported, err.Error()
			}
		}
	}
	r.Verdict, r.Reason = verdict, reason
	return r
}

func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// readSigFile reads a detached signature by path: a regular file of at
// most MaxSigFile bytes, a final symlink not followed, never blocking.
func readSigFile(path string) ([]byte, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSigFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSigFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxSigFile)
	}
	return b, nil
}
