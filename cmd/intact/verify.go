// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/internal/quote"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/walk"
)

const verifyUsage = `
Usage: intact verify [--cert CERT]... [-r] [--json] [--xattr-user]
                     [--evmkey FILE] [--evm-cert CERT]... [--require-evm | --evm-optional] PATH...

Appraises each file: recomputes its digest with the label's algorithm and
checks a signature against the trusted certificates (DER or PEM; --cert
may be repeated). One verdict per file:

    ok               the label verifies over the content
    content-changed  the content does not match the label (or the label
                     was copied from another file)
    bad-signature    the signature was not made by the key it names
    unknown-key      no trusted certificate has the label's keyid
    no-label         the file has no label
    bad-label        the label is malformed (truncated, wrong lengths)
    unsupported      a label type, version or algorithm intact cannot check
    unreadable       the file or its label could not be read
    metadata-changed security.evm does not match the file's owner, mode,
                     protected xattrs or (HMAC, full signature) inode
    unsigned         only a digest label vouches for the file and
                     --require-signature is given
    skipped          not appraised: larger than --max-size (default 4G),
                     or not a regular file (any more) when opened, or on
                     another file system

A file whose IMA label verifies is also checked against its security.evm
when it has one: signatures always (with the --cert and --evm-cert
certificates), HMACs with --evmkey. As in the kernel once EVM is
initialized, --evmkey or --evm-cert makes security.evm required: a file
without one is no-label (missing-HMAC), unless --evm-optional (for
migrations: it warns). --require-evm fails files without security.evm,
and HMACs when no --evmkey is given.

Prints a line per failing file and a summary; --json prints one JSON
object per file. Exit status 0 when every file is ok, 1 when any failed.
`

func cmdVerify(e *env, args []string) error {
	f := newFlags(e, "verify", verifyUsage)
	var tf treeFlags
	tf.register(f)
	var certs stringList
	f.Var(&certs, "cert", "trusted certificate, DER or PEM (repeatable)")
	asJSON := f.Bool("json", false, "print one JSON object per file")
	sigfile := f.Bool("sigfile", false, "read each label from PATH.sig (a detached signature) instead of the xattr")
	requireSig := f.Bool("require-signature", false, "fail files vouched for only by a digest label (as the kernel's appraise_type=imasig)")
	var ef evmVerifyFlags
	ef.register(f)
	paths, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := checkPaths("verify", paths, &tf); err != nil {
		return err
	}
	var loaded []*x509.Certificate
	for _, c := range certs {
		cs, err := sig.LoadCertificates(c)
		if err != nil {
			return fileError("certificate", c, err)
		}
		loaded = append(loaded, cs...)
	}
	keys := sig.NewKeyring(loaded...)
	evmOpts, err := ef.options(e, loaded)
	if err != nil {
		return err
	}
	a := appraise.New(appraise.Options{Keys: keys, XattrUser: tf.xattrUser, SigFile: *sigfile, RequireSignature: *requireSig, EVM: evmOpts})

	var sum verifySummary
	stop := e.progress(tf.recursive && !*asJSON, &sum.files)
	enc := json.NewEncoder(e.stdout)
	walk.Run(paths, tf.options(), func(en walk.Entry) appraise.Result {
		var se *walk.SkipError
		switch {
		case errors.As(en.Err, &se):
			return appraise.Result{Path: en.Path, Verdict: appraise.Skipped, Reason: strings.TrimPrefix(se.Error(), "skipped: ")}
		case en.Err != nil:
			return appraise.Result{Path: en.Path, Verdict: appraise.Unreadable, Reason: unwrapPathError(en.Err).Error()}
		}
		if *sigfile && isSigFile(en.Name) {
			return appraise.Result{} // a detached signature, not a file to appraise
		}
		return a.FileIn(en.File, en.Dir, en.Name, en.Path)
	}, func(r appraise.Result) {
		if r.Path == "" {
			return
		}
		sum.add(r.Verdict)
		switch {
		case *asJSON:
			enc.Encode(jsonResult(r))
		case !r.OK():
			stop()
			line := quoteName(r.Path) + ": " + string(r.Verdict)
			if r.Reason != "" {
				line += " (" + quote.Text(r.Reason) + ")"
			}
			fmt.Fprintln(e.stdout, line)
		}
	})
	stop()
	if !*asJSON {
		fmt.Fprintln(e.stdout, sum.String())
	}
	if sum.counts[appraise.UnknownKey] > 0 && len(certs) == 0 {
		hintf(e, "no --cert given: no signature can be checked; give the signers' certificates with --cert CERT (repeatable)")
	}
	if sum.failed > 0 {
		return errIntegrity
	}
	return nil
}

// verifyJSON is a result as verify --json prints it: a path that is not
// valid UTF-8 cannot be a JSON string (encoding/json would replace its
// bad bytes with U+FFFD, and two different names would print alike), so
// its exact bytes are also given, in standard base64, as path_base64.
type verifyJSON struct {
	appraise.Result
	PathBase64 string `json:"path_base64,omitempty"`
}

func jsonResult(r appraise.Result) verifyJSON {
	j := verifyJSON{Result: r}
	if !utf8.ValidString(r.Path) {
		j.PathBase64 = base64.StdEncoding.EncodeToString([]byte(r.Path))
	}
	return j
}

type verifySummary struct {
	files  atomic.Int64
	failed int
	counts map[appraise.Verdict]int
}

func (s *verifySummary) add(v appraise.Verdict) {
	s.files.Add(1)
	if s.counts == nil {
		s.counts = make(map[appraise.Verdict]int)
	}
	s.counts[v]++
	if v != appraise.OK {
		s.failed++
	}
}

func (s *verifySummary) String() string {
	n := s.files.Load()
	if s.failed == 0 {
		return fmt.Sprintf("%d file(s) verified, all ok", n)
	}
	var parts []string
	for v, c := range s.counts {
		if v != appraise.OK {
			parts = append(parts, fmt.Sprintf("%d %s", c, v))
		}
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d file(s) verified, %d ok, %d failed: %s", n, s.counts[appraise.OK], s.failed, strings.Join(parts, ", "))
}

// progress shows a file count on a terminal's stderr while a long walk
// runs; it returns a function that clears it (safe to call repeatedly).
func (e *env) progress(enabled bool, files *atomic.Int64) (stop func()) {
	if !enabled {
		return func() {}
	}
	return e.progressLine(func(el time.Duration) string {
		n := files.Load()
		return fmt.Sprintf("%d files, %.0f files/s", n, float64(n)/el.Seconds())
	})
}

// progressLine shows line(elapsed) on a terminal's stderr every 200 ms
// once a second has passed, and clears it when stopped (stop is safe to
// call repeatedly).
func (e *env) progressLine(line func(elapsed time.Duration) string) (stop func()) {
	if !e.stderrIsTerminal {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(e.stderr, "\r\033[K")
				}
				return
			case <-t.C:
				if el := time.Since(start); el > time.Second {
					fmt.Fprint(e.stderr, "\rintact: "+line(el))
					shown = true
				}
			}
		}
	}()
	var stopped atomic.Bool
	return func() {
		if stopped.CompareAndSwap(false, true) {
			close(done)
			<-finished
		}
	}
}

// isSigFile reports whether path is a detached signature (PATH.sig) that
// --sigfile reads and writes beside each file.
func isSigFile(path string) bool { return strings.HasSuffix(path, ".sig") }
