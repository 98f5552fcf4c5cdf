// SPDX-License-Identifier: Apache-2.0

// Package gen makes runtime policies from files: a directory tree, or
// the files installed Debian packages own. It is the I/O edge of
// package rtpolicy (which stays pure).
package gen

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/walk"
)

// Options configure policy generation from files.
type Options struct {
	Name string
	Algo digest.Algo // digest algorithm (default sha256)
	Jobs int         // files digested at once (0: one per CPU)
	// CrossFS descends into other file systems below a tree root.
	CrossFS bool
	// Strip is removed from the front of every path, and the result made
	// absolute: generating from an image mounted at /mnt/img with Strip
	// "/mnt/img" lists /usr/bin/ls, as the machine running it measures.
	Strip string
	// Certs are put into the policy's keys; with TrustSigned, a file whose
	// security.ima signature verifies with one of them is not listed (the
	// policy trusts the key: this needs the ima-sig template on the
	// machines, which records the signature).
	Certs       []*x509.Certificate
	TrustSigned bool
	// UserXattr reads user.ima instead of security.ima.
	UserXattr bool
	// MaxSize skips (reports) files larger than this many bytes; 0 means
	// no limit (the CLI's default is walk.DefaultMaxSize).
	MaxSize int64
}

func (o *Options) algo() digest.Algo {
	if o.Algo == 0 || o.Algo == digest.MD4 {
		return digest.SHA256
	}
	return o.Algo
}

// ErrModified marks a file whose content differs from its package's
// md5sums (changed since it was installed).
var ErrModified = errors.New("content differs from the package's md5sums: not listed")

type fileResult struct {
	path   string // as listed in the policy
	digest string
	signed bool
	err    error
}

type digester struct {
	o    *Options
	keys *sig.Keyring
}

// digest reads one file: its digest, whether a trusted key signed it, and
// its md5 when wantMD5 is set.
func (d *digester) digest(f *os.File, path string, wantMD5 bool) (res fileResult, md5sum []byte) {
	res.path = path
	algo := d.o.algo()
	var m hash.Hash
	var r io.Reader = f
	if wantMD5 {
		m = md5.New()
		r = io.TeeReader(f, m)
	}
	sum, err := digest.File(r, algo)
	if err != nil {
		res.err = unwrapPath(err)
		return res, nil
	}
	if m != nil {
		md5sum = m.Sum(nil)
	}
	res.digest = algo.String() + ":" + hex.EncodeToString(sum)
	if d.keys != nil && d.o.TrustSigned {
		raw, err := xattr.FGet(f, xattr.IMA(d.o.UserXattr))
		if err == nil && raw != nil {
			v := appraise.Check(raw, func(a digest.Algo) ([]byte, error) {
				if a == algo {
					return sum, nil
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return nil, err
				}
				return digest.File(f, a)
			}, d.keys)
			res.signed = v.OK() && v.Label == label.TypeDigsig.String()
		}
	}
	return res, md5sum
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func newGenerated(o *Options) (rtpolicy.Policy, *digester) {
	p := rtpolicy.Policy{Format: rtpolicy.Version, Name: o.Name, Digests: map[string][]string{}}
	d := &digester{o: o}
	if len(o.Certs) > 0 {
		d.keys = sig.NewKeyring(o.Certs...)
		for _, c := range o.Certs {
			p.Keys = append(p.Keys, base64.StdEncoding.EncodeToString(c.Raw))
		}
	}
	return p, d
}

// ErrNotUTF8 marks a file whose path is not valid UTF-8: a JSON policy
// cannot hold it exactly (encoding/json would replace the bad bytes, and
// two different names would be listed as one), so it is not listed.
var ErrNotUTF8 = errors.New("path is not valid UTF-8: a JSON policy cannot list it exactly; not listed")

func addResult(p *rtpolicy.Policy, r fileResult, rep *rtpolicy.GenerateReport) {
	if r.err == nil && !utf8.ValidString(r.path) {
		r.err = ErrNotUTF8
	}
	switch {
	case r.err != nil:
		rep.Problem(r.path, unwrapPath(r.err))
	case r.signed:
		rep.Signed++
	default:
		if len(p.Digests[r.path]) == 0 {
			rep.Files++
		}
		p.Digests[r.path] = append(p.Digests[r.path], r.digest)
	}
}

func (o *Options) listedPath(path string) string {
	if o.Strip != "" {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(o.Strip, "/"))
		if ok && (rel == "" || rel[0] == '/') {
			path = rel
		}
	}
	return "/" + strings.TrimLeft(filepath.Clean("/"+path), "/")
}

// FromTree digests every regular file below roots (in parallel, one file
// system unless CrossFS, never following symlinks) into a policy.
func FromTree(roots []string, o Options) (rtpolicy.Policy, *rtpolicy.GenerateReport, error) {
	if len(roots) == 0 {
		return rtpolicy.Policy{}, nil, errors.New("no directory to generate from")
	}
	// Paths are listed as the machine sees them: a relative root (and
	// Strip) is made absolute from the working directory, never read as if
	// it started at / (./bin/cat is not /bin/cat).
	roots = slices.Clone(roots)
	for i, r := range roots {
		if _, err := os.Stat(r); err != nil {
			return rtpolicy.Policy{}, nil, fmt.Errorf("%s: %w", r, unwrapPath(err))
		}
		abs, err := filepath.Abs(r)
		if err != nil {
			return rtpolicy.Policy{}, nil, fmt.Errorf("%s: %w", r, err)
		}
		roots[i] = abs
	}
	if o.Strip != "" && !filepath.IsAbs(o.Strip) {
		abs, err := filepath.Abs(o.Strip)
		if err != nil {
			return rtpolicy.Policy{}, nil, fmt.Errorf("strip %s: %w", o.Strip, err)
		}
		o.Strip = abs
	}
	p, d := newGenerated(&o)
	rep := &rtpolicy.GenerateReport{}
	walk.Run(roots, walk.Options{Recursive: true, CrossFS: o.CrossFS, Jobs: o.Jobs, MaxSize: o.MaxSize}, func(e walk.Entry) fileResult {
		if e.Err != nil {
			return fileResult{path: e.Path, err: e.Err}
		}
		r, _ := d.digest(e.File, e.Path, false)
		return r
	}, func(r fileResult) {
		if r.err == nil {
			r.path = o.listedPath(r.path)
		}
		addResult(&p, r, rep)
	})
	c, err := rtpolicy.Canonical(p)
	return c, rep, err
}

// DpkgOptions configure FromDpkg.
type DpkgOptions struct {
	Options
	// AdminDir is dpkg's database (default /var/lib/dpkg); its info/
	// holds each package's .list and .md5sums.
	AdminDir string
	// Root is where the packages' files are (default /); paths are listed
	// relative to it, as the machine sees them.
	Root string
	// Packages restricts generation to these packages (with or without
	// ":arch"); empty: every installed package.
	Packages []string
}

// FromDpkg digests, in parallel, the regular files that installed Debian
// packages own (dpkg's info/*.list). Paths are listed as the kernel
// records them: directory symlinks resolved (on a merged-/usr system
// /bin/ls is /usr/bin/ls). A file whose md5 differs from the package's
// md5sums changed after installation: it is not listed, and reported
// (configuration files have no md5sums and are listed as they are).
func FromDpkg(o DpkgOptions) (rtpolicy.Policy, *rtpolicy.GenerateReport, error) {
	if o.AdminDir == "" {
		o.AdminDir = "/var/lib/dpkg"
	}
	if o.Root == "" {
		o.Root = "/"
	}
	o.Strip = ""
	info := filepath.Join(o.AdminDir, "info")
	lists, err := filepath.Glob(filepath.Join(info, "*.list"))
	if err != nil {
		return rtpolicy.Policy{}, nil, err
	}
	if len(lists) == 0 {
		return rtpolicy.Policy{}, nil, fmt.Errorf("%s: no package file lists (*.list)", info)
	}
	want := map[string]bool{}
	for _, p := range o.Packages {
		want[p] = true
	}
	found := map[string]bool{}
	type owned struct {
		path string // on disk, below Root
		md5  []byte // from md5sums, or nil
	}
	var files []owned
	seen := map[string]bool{}
	for _, lf := range lists {
		pkg := strings.TrimSuffix(filepath.Base(lf), ".list")
		bare, _, _ := strings.Cut(pkg, ":")
		if len(want) > 0 && !want[pkg] && !want[bare] {
			continue
		}
		found[pkg], found[bare] = true, true
		sums, err := readMD5Sums(strings.TrimSuffix(lf, ".list") + ".md5sums")
		if err != nil {
			return rtpolicy.Policy{}, nil, err
		}
		b, err := os.ReadFile(lf)
		if err != nil {
			return rtpolicy.Policy{}, nil, fmt.Errorf("%s: %w", lf, unwrapPath(err))
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" || line == "/." || !strings.HasPrefix(line, "/") {
				continue
			}
			disk := filepath.Join(o.Root, line)
			if seen[disk] {
				continue
			}
			seen[disk] = true
			fi, err := os.Lstat(disk)
			if err != nil || !fi.Mode().IsRegular() {
				continue // directories, symlinks, diverted or removed files
			}
			files = append(files, owned{disk, sums[strings.TrimPrefix(line, "/")]})
		}
	}
	for _, p := range o.Packages {
		if !found[p] {
			return rtpolicy.Policy{}, nil, fmt.Errorf("package %s: not installed (no %s.list in %s)", p, p, info)
		}
	}
	p, d := newGenerated(&o.Options)
	rep := &rtpolicy.GenerateReport{}
	roots := make([]string, len(files))
	byPath := make(map[string][]byte, len(files))
	for i, f := range files {
		roots[i] = f.path
		byPath[f.path] = f.md5
	}
	root := filepath.Clean(o.Root)
	walk.Run(roots, walk.Options{Jobs: o.Jobs, MaxSize: o.MaxSize}, func(e walk.Entry) fileResult {
		if e.Err != nil {
			return fileResult{path: e.Path, err: e.Err}
		}
		want := byPath[e.Path]
		r, sum := d.digest(e.File, e.Path, want != nil)
		if r.err == nil && want != nil && !bytes.Equal(sum, want) {
			r.err = ErrModified
		}
		return r
	}, func(r fileResult) {
		if r.err == nil {
			r.path = resolvedPath(root, r.path)
		} else if errors.Is(r.err, ErrModified) {
			rep.Modified++
		}
		addResult(&p, r, rep)
	})
	c, err := rtpolicy.Canonical(p)
	return c, rep, err
}

// resolvedPath is path (below root) with its directory's symlinks
// resolved, relative to root and absolute: the path the kernel records.
func resolvedPath(root, path string) string {
	dir, base := filepath.Split(path)
	if rd, err := filepath.EvalSymlinks(dir); err == nil {
		dir = rd
	}
	full := filepath.Join(dir, base)
	if root != "/" {
		if rel, err := filepath.Rel(root, full); err == nil && !strings.HasPrefix(rel, "..") {
			full = "/" + rel
		}
	}
	return full
}

// readMD5Sums reads a dpkg md5sums file ("<md5>  <path without />");
// a missing file is no sums.
func readMD5Sums(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		sum, p, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(sum)
		if err != nil || len(raw) != md5.Size {
			continue
		}
		out[p] = raw
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
