// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/manifest"
	"github.com/intactsec/intact/sig"
)

const manifestUsage = `
Usage: intact manifest create --key KEY [--rules FILE] [-a ALGO] [--xattrs LIST] [--all-fs] -o MANIFEST DIR...
       intact manifest check --cert CERT [--json] MANIFEST [DIR]
       intact manifest update --key KEY --cert CERT [--yes] [-o NEW] MANIFEST [DIR]

A manifest records every entry of the trees at DIR... — path, type, mode,
owner, group, size, content digest, symlink target, device numbers and the
selected xattrs (by default security.capability, security.evm,
security.ima, security.selinux) — in a canonical text format (the same
tree gives the same bytes), signed with the same keys as labels (a PEM
key or a TPM key from "intact keygen --tpm"). docs/manifest.md.

check verifies the signature first (nothing is reported from a manifest
that does not verify), walks the trees and reports every entry added,
removed or changed, naming each changed attribute. DIR checks a
single-root manifest against another directory (a disk mounted
elsewhere). Exit 0 unchanged, 1 changes found, 2 error (also when only
unreadable entries were found).

update checks, shows the differences, and after confirmation (--yes, or
"y" on a terminal) writes a new manifest of exactly the trees it compared,
signed with --key, atomically to -o (default: MANIFEST itself).

--rules FILE leaves out subtrees and chooses attributes per subtree:

    !/var/log              leave out /var/log
    /var/lib -content      below /var/lib: everything but content
    /etc/ssh content mode  below /etc/ssh: exactly content and mode
`

func cmdManifest(e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "create":
			return cmdManifestCreate(e, args[1:])
		case "check":
			return cmdManifestCheck(e, args[1:])
		case "update":
			return cmdManifestUpdate(e, args[1:])
		case "-h", "--help", "help":
			fmt.Fprint(e.stdout, manifestUsage[1:])
			return errHelp
		}
	}
	return usageErrorf("manifest", "want \"intact manifest create|check|update ...\"")
}

// manifestScanFlags are the walk's flags shared by the subcommands.
type manifestScanFlags struct {
	jobs *int
}

func (m *manifestScanFlags) register(f *flagSet) {
	m.jobs = f.Int("j", 0, "files hashed at once (default: one per CPU)")
}

func cmdManifestCreate(e *env, args []string) error {
	f := newFlags(e, "manifest create", manifestUsage)
	var sf manifestScanFlags
	sf.register(f)
	var kf manifestKeyFlags
	kf.register(f)
	out := f.String("o", "", "the manifest `FILE` to write")
	algoName := f.String("a", "sha256", "content digest algorithm: sha256, sha384, sha512")
	rulesPath := f.String("rules", "", "rules `FILE`: subtrees to leave out, attributes per subtree")
	xattrList := f.String("xattrs", strings.Join(manifest.DefaultXattrs, ","), "xattrs to record (`LIST`, comma-separated; empty for none)")
	allFS := f.Bool("all-fs", false, "descend into other file systems mounted below DIR")
	dirs, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case *kf.key == "":
		return usageErrorf("manifest", "--key is required")
	case *out == "":
		return usageErrorf("manifest", "-o is required")
	case len(dirs) == 0:
		return usageErrorf("manifest", "no DIR to record")
	}
	algo, err := digest.ParseAlgo(*algoName)
	if err != nil || algo == digest.MD5 || algo == digest.SHA1 {
		return usageErrorf("manifest", "-a %q: want sha256, sha384 or sha512", *algoName)
	}
	roots, err := manifestRoots(dirs)
	if err != nil {
		return err
	}
	outAbs, _ := filepath.Abs(*out)
	for _, r := range roots {
		if outAbs == r || strings.HasPrefix(outAbs, strings.TrimSuffix(r, "/")+"/") {
			return usageErrorf("manifest", "-o %s is inside the tree %s it records", *out, r)
		}
	}
	opts := manifest.CreateOptions{ScanOptions: manifest.ScanOptions{Algo: algo, Jobs: *sf.jobs, CrossFS: *allFS}}
	if opts.Xattrs, err = parseXattrList(*xattrList); err != nil {
		return err
	}
	if *rulesPath != "" {
		if opts.Rules, err = loadRules(*rulesPath); err != nil {
			return err
		}
	}
	signer, keyID, done, err := kf.open(e)
	if err != nil {
		return err
	}
	defer done()
	opts.Signer, opts.KeyID = signer, keyID

	opts.Entries, opts.Hashed = new(atomic.Int64), new(atomic.Int64)
	stop := e.progressBytes(opts.Entries, opts.Hashed)
	var n int
	err = atomicfile.WriteWith(*out, 0o644, func(w io.Writer) error {
		n, err = manifest.Create(w, roots, opts)
		return err
	})
	stop()
	if err != nil {
		return fmt.Errorf("manifest %s: %w", *out, err)
	}
	fmt.Fprintf(e.stderr, "intact: %s: %d entries of %s, signed (keyid %08x)\n", *out, n, strings.Join(roots, " "), opts.KeyID)
	return nil
}

// manifestKeyFlags name the key manifest create and update sign with.
type manifestKeyFlags struct {
	key, tpm, keyIDCert *string
}

func (k *manifestKeyFlags) register(f *flagSet) {
	k.key = f.String("key", "", "signing key (PEM), or a TPM key (intact keygen --tpm)")
	k.tpm = f.String("tpm", "", "the TPM that holds --key (`SPEC`)")
	k.keyIDCert = f.String("keyid-from-cert", "", "take the keyid from this certificate's SubjectKeyIdentifier")
}

// open loads the key and the keyid its signatures carry; done releases
// it (a TPM key's TPM).
func (k *manifestKeyFlags) open(e *env) (signer crypto.Signer, keyID uint32, done func(), err error) {
	signer, done, err = loadAnySigner(e, "manifest", *k.key, *k.tpm)
	if err != nil {
		return nil, 0, nil, err
	}
	if keyID, err = signingKeyID(signer, *k.key, "", *k.keyIDCert); err != nil {
		done()
		return nil, 0, nil, err
	}
	return signer, keyID, done, nil
}

func manifestRoots(dirs []string) ([]string, error) {
	var roots []string
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, unwrapPathError(err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s: not a directory", d)
		}
		roots = append(roots, abs)
	}
	return roots, nil
}

func parseXattrList(s string) ([]string, error) {
	var xs []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			xs = append(xs, x)
		}
	}
	slices.Sort(xs)
	return slices.Compact(xs), nil
}

// maxRulesFile bounds a rules file.
const maxRulesFile = 1 << 20

func loadRules(path string) (*manifest.Rules, error) {
	b, err := readBounded(path, maxRulesFile)
	if err != nil {
		return nil, err
	}
	return manifest.ParseRules(path, string(b))
}

// readBounded reads a whole file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

// openManifest opens and verifies a manifest with the --cert certificates.
func openManifest(path string, certs []string) (*manifest.Verified, *os.File, error) {
	if len(certs) == 0 {
		return nil, nil, usageErrorf("manifest", "--cert is required: a manifest is only read once its signature verifies")
	}
	keys := sig.NewKeyring()
	for _, c := range certs {
		cs, err := sig.LoadCertificates(c)
		if err != nil {
			return nil, nil, fmt.Errorf("loading certificate %s: %w", c, unwrapPathError(err))
		}
		for _, cert := range cs {
			keys.Add(cert)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fileError("manifest", path, err)
	}
	v, err := manifest.Verify(f, keys)
	if err != nil {
		f.Close()
		err = fmt.Errorf("manifest %s: %w", path, err)
		if errors.Is(err, manifest.ErrSignature) {
			return nil, nil, &exitError{code: 1, err: err}
		}
		return nil, nil, err
	}
	return v, f, nil
}

// manifestDirFor maps the manifest's roots to the directories to read.
func manifestDirFor(v *manifest.Verified, operands []string) (func(string) string, error) {
	if len(operands) == 0 {
		return func(r string) string { return r }, nil
	}
	if len(v.Roots) != 1 {
		return nil, usageErrorf("manifest", "DIR can only replace the root of a single-root manifest (this one has %d)", len(v.Roots))
	}
	dir := operands[0]
	return func(string) string { return dir }, nil
}

func cmdManifestCheck(e *env, args []string) error {
	f := newFlags(e, "manifest check", manifestUsage)
	var sf manifestScanFlags
	sf.register(f)
	var certs stringList
	f.Var(&certs, "cert", "trusted certificate, DER or PEM (repeatable)")
	asJSON := f.Bool("json", false, "print one JSON object per difference, then a summary object")
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(operands) == 0 || len(operands) > 2 {
		return usageErrorf("manifest", "want MANIFEST [DIR]")
	}
	v, mf, err := openManifest(operands[0], certs)
	if err != nil {
		return err
	}
	defer mf.Close()
	dirFor, err := manifestDirFor(v, operands[1:])
	if err != nil {
		return err
	}
	res, err := runCheck(e, v, dirFor, *sf.jobs, !*asJSON, nil)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", operands[0], err)
	}
	printCheck(e, v, res, *asJSON)
	return checkStatus(res)
}

func runCheck(e *env, v *manifest.Verified, dirFor func(string) string, jobs int, progress bool, seen func(string, *manifest.Entry) error) (*manifest.Result, error) {
	opts := manifest.ScanOptions{Jobs: jobs, Entries: new(atomic.Int64), Hashed: new(atomic.Int64)}
	stop := func() {}
	if progress {
		stop = e.progressBytes(opts.Entries, opts.Hashed)
	}
	res, err := manifest.Check(v, dirFor, opts, seen)
	stop()
	return res, err
}

func checkStatus(res *manifest.Result) error {
	switch {
	case len(res.Differences) > 0:
		return errIntegrity
	case len(res.Errors) > 0:
		return &exitError{code: 2, err: fmt.Errorf("%d entries could not be read", len(res.Errors))}
	}
	return nil
}

// shownPath is the escaped absolute path of a difference.
func shownPath(root, rel string) string {
	switch {
	case rel == "/":
		return manifest.Escape(root)
	case root == "/":
		return manifest.Escape(rel)
	}
	return manifest.Escape(root + rel)
}

type jsonDifference struct {
	Path    string            `json:"path"`
	Status  manifest.Status   `json:"status"`
	Type    string            `json:"type"`
	Changes []manifest.Change `json:"changes,omitempty"`
}

type jsonSummary struct {
	Summary struct {
		Manifest   int    `json:"manifest_entries"`
		Found      int    `json:"found_entries"`
		Added      int    `json:"added"`
		Removed    int    `json:"removed"`
		Changed    int    `json:"changed"`
		Errors     int    `json:"errors"`
		SignedBy   string `json:"signed_by"`
		KeyID      string `json:"keyid"`
		Unchanged  bool   `json:"unchanged"`
		Algorithms string `json:"hash"`
	} `json:"summary"`
}

func printCheck(e *env, v *manifest.Verified, res *manifest.Result, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, d := range res.Differences {
			enc.Encode(jsonDifference{Path: shownPath(d.Root, d.Path), Status: d.Status, Type: d.Type.String(), Changes: d.Changes})
		}
		for i, se := range res.Errors {
			enc.Encode(map[string]string{"path": shownPath(res.ErrorRoots[i], se.Path), "status": "error", "error": se.Err.Error()})
		}
		var s jsonSummary
		s.Summary.Manifest, s.Summary.Found = res.Entries, res.Seen
		s.Summary.Added, s.Summary.Removed, s.Summary.Changed, s.Summary.Errors = res.Added, res.Removed, res.Changed, len(res.Errors)
		s.Summary.SignedBy, s.Summary.KeyID = v.Cert.Subject.String(), fmt.Sprintf("%08x", v.Signature.KeyID)
		s.Summary.Unchanged = len(res.Differences) == 0 && len(res.Errors) == 0
		s.Summary.Algorithms = v.Algo.String()
		enc.Encode(s)
		return
	}
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	for _, d := range res.Differences {
		line := fmt.Sprintf("%-8s %s", string(d.Status)+":", shownPath(d.Root, d.Path))
		switch d.Status {
		case manifest.Changed:
			line += ": " + describeChanges(d.Changes)
		default:
			line += " (" + d.Type.String() + ")"
		}
		fmt.Fprintln(w, line)
	}
	for i, se := range res.Errors {
		fmt.Fprintf(w, "%-8s %s: %v\n", "error:", shownPath(res.ErrorRoots[i], se.Path), se.Err)
	}
	state := "unchanged"
	if len(res.Differences) > 0 {
		state = "CHANGED"
	}
	fmt.Fprintf(w, "\nSummary: %s\n  manifest: %d entries, signed by %s (keyid %08x), %s\n  found:    %d entries\n  added %d, removed %d, changed %d, unreadable %d\n",
		state, res.Entries, v.Cert.Subject, v.Signature.KeyID, v.Algo, res.Seen, res.Added, res.Removed, res.Changed, len(res.Errors))
}

// describeChanges names each changed attribute, with old→new values for
// the short ones.
func describeChanges(cs []manifest.Change) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		switch {
		case c.Attr == "content":
			parts = append(parts, "content")
		case strings.HasPrefix(c.Attr, "xattr "):
			switch {
			case c.Old == "absent":
				parts = append(parts, c.Attr+" added")
			case c.New == "absent":
				parts = append(parts, c.Attr+" removed")
			default:
				parts = append(parts, c.Attr+" changed")
			}
		default:
			parts = append(parts, c.Attr+" "+c.Old+"→"+c.New)
		}
	}
	return strings.Join(parts, ", ")
}

func cmdManifestUpdate(e *env, args []string) error {
	f := newFlags(e, "manifest update", manifestUsage)
	var sf manifestScanFlags
	sf.register(f)
	var certs stringList
	f.Var(&certs, "cert", "trusted certificate of the old manifest, DER or PEM (repeatable)")
	var kf manifestKeyFlags
	kf.register(f)
	out := f.String("o", "", "where to write the new manifest (default: MANIFEST)")
	yes := f.Bool("yes", false, "write the new manifest without asking")
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(operands) == 0 || len(operands) > 2 {
		return usageErrorf("manifest", "want MANIFEST [DIR]")
	}
	if *kf.key == "" {
		return usageErrorf("manifest", "--key is required")
	}
	path := operands[0]
	if *out == "" {
		*out = path
	}
	v, mf, err := openManifest(path, certs)
	if err != nil {
		return err
	}
	defer mf.Close()
	dirFor, err := manifestDirFor(v, operands[1:])
	if err != nil {
		return err
	}
	signer, keyID, done, err := kf.open(e)
	if err != nil {
		return err
	}
	defer done()

	// The new manifest is written from the very entries the check saw,
	// so what is signed is exactly what was shown.
	var writeErr error
	err = atomicfile.WriteWith(*out, 0o644, func(w io.Writer) error {
		mw, err := manifest.NewWriter(w, v.Header)
		if err != nil {
			return err
		}
		root := ""
		res, err := runCheck(e, v, dirFor, *sf.jobs, true, func(r string, en *manifest.Entry) error {
			if r != root {
				root = r
				if err := mw.Root(r); err != nil {
					return err
				}
			}
			return mw.Add(en)
		})
		if err != nil {
			return fmt.Errorf("manifest %s: %w", path, err)
		}
		printCheck(e, v, res, false)
		if len(res.Errors) > 0 {
			writeErr = fmt.Errorf("%d entries could not be read: not updating", len(res.Errors))
			return writeErr
		}
		if len(res.Differences) == 0 {
			writeErr = errNoChanges
			return writeErr
		}
		if !*yes {
			ok, err := confirm(e, "write the new manifest, signed with "+*kf.key+"?")
			if err != nil {
				return err
			}
			if !ok {
				writeErr = errors.New("not confirmed: nothing written")
				return writeErr
			}
		}
		return mw.Sign(signer, keyID)
	})
	switch {
	case errors.Is(err, errNoChanges):
		fmt.Fprintf(e.stderr, "intact: %s: no changes, nothing written\n", path)
		return nil
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stderr, "intact: wrote %s (keyid %08x)\n", *out, keyID)
	return nil
}

var errNoChanges = errors.New("no changes")

// confirm asks a yes/no question on a terminal; without one it refuses.
func confirm(e *env, q string) (bool, error) {
	if !e.stderrIsTerminal {
		return false, usageErrorf("manifest", "not on a terminal: give --yes to write the new manifest")
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", q)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// progressBytes shows entries and MB hashed on a terminal's stderr.
func (e *env) progressBytes(entries, bytes *atomic.Int64) (stop func()) {
	return e.progressLine(func(el time.Duration) string {
		mb := float64(bytes.Load()) / 1e6
		return fmt.Sprintf("%d entries, %.0f MB hashed, %.0f MB/s", entries.Load(), mb, mb/el.Seconds())
	})
}
