// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/rtpolicy/gen"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/walk"
)

// Runtime policy subcommands of "intact policy" (the verifier's allow
// list, package rtpolicy), beside "intact policy check" (the kernel's IMA
// policy language).

const rtpolicyUsage = `
Usage:
    intact policy generate (--tree DIR... | --log FILE | --dpkg [--package P]... |
                           --manifest FILE --manifest-cert CERT) [--cert CERT]... [--out FILE]
    intact policy import-keylime FILE [--out FILE]
    intact policy merge A B... --out FILE
    intact policy diff A B [--json]
    intact policy window BASE OTHER (--for DURATION | --until TIME) [--note TEXT] --out FILE
    intact policy sign --key KEY POLICY [--detached] [--out FILE]
    intact policy verify-signature --cert CERT POLICY [--sig FILE] [--out FILE]
    intact policy eval POLICY LIST [--at TIME] [--json]
    intact policy generate --eventlog LOG... [--algo sha256] [--out FILE]
    intact policy eval --eventlog LOG BOOT-POLICY [--at TIME] [--json]

Runtime policies (intact's JSON format, see docs/runtime-policy.md) say
which measured files an attested machine may run; the verifier judges
every record of its measurement list against one.

generate      digests every regular file of directory trees (in parallel),
              the files a measurement list records, or the regular files
              installed Debian packages own (dpkg's lists, md5sums
              cross-checked), or the files a signed tree manifest records
              (verified with --manifest-cert first); --cert puts keys into the policy and, with
              --trust-signed, leaves files signed by them to their
              signature instead of listing their digests
import-keylime converts a Keylime runtime policy or allowlist, keeping
              Keylime's judgement of every record; prints what it could
              not carry over exactly
merge         unions policies and explains where they disagree
diff          what B accepts that A does not (+), and the reverse (-);
              exit status 1 when they differ
window        BASE with an update window: OTHER's digests are accepted
              too until the window ends (e.g. BASE the new policy, OTHER
              the old one, during a package upgrade)
sign          signs the canonical policy: an envelope with a "sig" member,
              or a detached signature (FILE.sig)
verify-signature checks a signed policy (exit 1 if it does not verify)
              and can write it without its signature
eval          judges a measurement list (binary or ASCII) offline, as the
              verifier: a record whose template hash does not match its
              data fails (template-hash) whatever the policy lists

Measured-boot policies (see docs/boot-policy.md) say which firmware
configuration, Secure Boot state and keys, boot chain and kernel command
line a machine's TCG boot event log may show. generate --eventlog learns
one from known-good logs (several: each log's digests are accepted
variants); eval --eventlog judges a log's claims against one (exit 1
naming each event that breaks it; the verifier checks the log against the
TPM's PCRs first).

Policies are written atomically; without --out to standard output.
`

var rtpolicyCommands = map[string]func(e *env, args []string) error{
	"generate":         cmdPolicyGenerate,
	"import-keylime":   cmdPolicyImportKeylime,
	"merge":            cmdPolicyMerge,
	"diff":             cmdPolicyDiff,
	"window":           cmdPolicyWindow,
	"sign":             cmdPolicySign,
	"verify-signature": cmdPolicyVerifySignature,
	"eval":             cmdPolicyEval,
}

// rtpolicyCommandNames are the runtime policy subcommands in the order the
// usage lists them.
var rtpolicyCommandNames = []string{"generate", "import-keylime", "merge", "diff", "window", "sign", "verify-signature", "eval"}

// runtimePolicyCommand returns the runtime policy subcommand named, or nil.
func runtimePolicyCommand(name string) func(e *env, args []string) error {
	return rtpolicyCommands[name]
}

func rtFlags(e *env, sub string) *flagSet {
	return newFlags(e, "policy "+sub, rtpolicyUsage)
}

// writePolicy writes a policy document to out (atomically) or stdout.
func writeOut(e *env, out string, b []byte) error {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	if out == "" || out == "-" {
		_, err := e.stdout.Write(b)
		return err
	}
	if err := atomicfile.WriteFile(out, b, 0o644, false); err != nil {
		return fmt.Errorf("writing %s: %w", out, unwrapPathError(err))
	}
	return nil
}

func writePolicyDoc(e *env, out string, p rtpolicy.Policy) error {
	c, err := rtpolicy.Canonical(p)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return err
	}
	return writeOut(e, out, b)
}

// readPolicyFile reads an intact runtime policy, plain or signed (the
// signature is not checked here: see verify-signature).
func readPolicyFile(path string) (rtpolicy.Policy, error) {
	b, err := readNamed("policy", path, readfile.Policy)
	if err != nil {
		return rtpolicy.Policy{}, err
	}
	doc, _, err := rtpolicy.SplitEnvelope(b)
	if err != nil {
		return rtpolicy.Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	c, err := rtpolicy.Parse(doc)
	if err != nil {
		var top map[string]json.RawMessage
		if json.Unmarshal(doc, &top) == nil && top["intact_runtime_policy"] == nil && (top["meta"] != nil || top["hashes"] != nil) {
			return rtpolicy.Policy{}, withHint(fmt.Errorf("%s: %w", path, err),
				"a Keylime policy? convert it with \"intact policy import-keylime\"")
		}
		return rtpolicy.Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	return c.Document(), nil
}

func loadCerts(paths []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		cs, err := sig.LoadCertificates(p)
		if err != nil {
			return nil, fileError("certificate", p, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

func policyName(out, fallback string) string {
	if out != "" && out != "-" {
		return strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
	}
	return fallback
}

func reportGenerate(e *env, rep *rtpolicy.GenerateReport) {
	fmt.Fprintf(e.stderr, "intact: %d paths listed, %d left to their signature, %d changed since installation, %d not listed\n",
		rep.Files, rep.Signed, rep.Modified, rep.Skipped)
	for i, p := range rep.Problems {
		if i == 20 {
			warnf(e, "and %d more", rep.Skipped-20)
			break
		}
		warnf(e, "not listed: %s", p) // quoted by GenerateReport.Problem
	}
}

func cmdPolicyGenerate(e *env, args []string) error {
	f := rtFlags(e, "generate")
	var trees, certs, packages stringList
	f.Var(&trees, "tree", "digest the regular files below DIR (repeatable)")
	logFile := f.String("log", "", "list the files a measurement list FILE records")
	var eventLogs stringList
	f.Var(&eventLogs, "eventlog", "learn a measured-boot policy from a known-good TCG boot event `LOG` (repeatable: each log's digests are accepted variants)")
	manifestFile := f.String("manifest", "", "list the files a signed tree manifest FILE records (intact manifest create)")
	var manifestCerts stringList
	f.Var(&manifestCerts, "manifest-cert", "with --manifest, a certificate that verifies it (repeatable)")
	dpkg := f.Bool("dpkg", false, "digest the files installed Debian packages own")
	f.Var(&packages, "package", "with --dpkg, only this package (repeatable)")
	admin := f.String("dpkg-admin", "/var/lib/dpkg", "with --dpkg, dpkg's database")
	root := f.String("root", "/", "with --dpkg, where the packages' files are")
	f.Var(&certs, "cert", "put this certificate's key into the policy (repeatable)")
	trust := f.Bool("trust-signed", false, "with --cert, leave files signed by those keys to their signature instead of listing them (needs the ima-sig template)")
	strip := f.String("strip", "", "with --tree, remove this prefix from the listed paths (a mounted image)")
	name := f.String("name", "", "policy name (default: from --out)")
	algo := f.String("algo", "sha256", "digest algorithm")
	jobs := f.Int("j", 0, "files digested at once (default one per CPU)")
	allFS := f.Bool("all-fs", false, "with --tree, descend into other file systems")
	xattrUser := f.Bool("xattr-user", false, "read user.ima instead of security.ima")
	out := f.String("out", "", "write the policy to FILE")
	maxSize := int64(walk.DefaultMaxSize)
	f.Func("max-size", "with --tree or --dpkg, skip (and report) files larger than `SIZE` (bytes, or with K, M, G, T; 0: no limit; default 4G)", func(s string) error {
		n, err := walk.ParseSize(s)
		maxSize = n
		return err
	})
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) != 0 {
		return usageErrorf("policy generate", "unexpected operand %q", ops[0])
	}
	sources := 0
	for _, on := range []bool{len(trees) > 0, *logFile != "", *dpkg, *manifestFile != "", len(eventLogs) > 0} {
		if on {
			sources++
		}
	}
	if sources != 1 {
		return usageErrorf("policy generate", "give one of --tree, --log, --dpkg, --manifest or --eventlog")
	}
	if len(eventLogs) > 0 {
		return generateBootPolicy(e, eventLogs, *algo, policyName(*out, *name), *out)
	}
	if len(packages) > 0 && !*dpkg {
		return usageErrorf("policy generate", "--package needs --dpkg")
	}
	if *trust && len(certs) == 0 {
		return usageErrorf("policy generate", "--trust-signed needs --cert")
	}
	if *jobs < 0 {
		return usageErrorf("policy generate", "-j must not be negative")
	}
	a, err := digest.ParseAlgo(*algo)
	if _, ok := a.CryptoHash(); err != nil || !ok {
		return usageErrorf("policy generate", "--algo %q: not a hash algorithm intact can compute", *algo)
	}
	cs, err := loadCerts(certs)
	if err != nil {
		return err
	}
	o := gen.Options{Name: *name, Algo: a, Jobs: *jobs, CrossFS: *allFS, Strip: *strip, Certs: cs, TrustSigned: *trust, UserXattr: *xattrUser, MaxSize: maxSize}
	if o.Name == "" {
		o.Name = policyName(*out, "generated")
	}
	var p rtpolicy.Policy
	var rep *rtpolicy.GenerateReport
	switch {
	case len(trees) > 0:
		p, rep, err = gen.FromTree(trees, o)
	case *manifestFile != "":
		v, mf, merr := openManifest(*manifestFile, manifestCerts)
		if merr != nil {
			return merr
		}
		defer mf.Close()
		p, rep, err = gen.FromManifest(v, o)
	case *logFile != "":
		var l *mlog.List
		if l, err = mlog.ReadFile(*logFile, mlog.Options{}); err != nil {
			return fileError("measurement list", *logFile, err)
		}
		p, rep, err = rtpolicy.FromLog(l, o.Name)
		if err == nil && len(cs) > 0 {
			for _, c := range cs {
				p.Keys = append(p.Keys, encodeCert(c))
			}
		}
	default:
		p, rep, err = gen.FromDpkg(gen.DpkgOptions{Options: o, AdminDir: *admin, Root: *root, Packages: packages})
	}
	if err != nil {
		return err
	}
	reportGenerate(e, rep)
	return writePolicyDoc(e, *out, p)
}

func cmdPolicyImportKeylime(e *env, args []string) error {
	f := rtFlags(e, "import-keylime")
	out := f.String("out", "", "write the policy to FILE")
	name := f.String("name", "", "policy name (default: from the file name)")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) != 1 {
		return usageErrorf("policy import-keylime", "want one Keylime policy or allowlist FILE")
	}
	b, err := readNamed("keylime policy", ops[0], readfile.Policy)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = policyName(ops[0], "keylime")
	}
	p, warns, err := rtpolicy.ImportKeylime(b, *name)
	if err != nil {
		return fmt.Errorf("%s: %w", ops[0], err)
	}
	for _, w := range warns {
		warnf(e, "%s: %s", ops[0], w)
	}
	return writePolicyDoc(e, *out, p)
}

func cmdPolicyMerge(e *env, args []string) error {
	f := rtFlags(e, "merge")
	out := f.String("out", "", "write the merged policy to FILE")
	name := f.String("name", "", "name of the merged policy (default: the first one's)")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) < 2 || *out == "" {
		return usageErrorf("policy merge", "want two or more policies and --out FILE")
	}
	var ps []rtpolicy.Policy
	for _, p := range ops {
		d, err := readPolicyFile(p)
		if err != nil {
			return err
		}
		ps = append(ps, d)
	}
	m, conflicts, err := rtpolicy.Merge(ps, ops)
	if err != nil {
		return err
	}
	if *name != "" {
		m.Name = *name
	}
	for _, c := range conflicts {
		warnf(e, "%s", c)
	}
	return writePolicyDoc(e, *out, m)
}

func cmdPolicyDiff(e *env, args []string) error {
	f := rtFlags(e, "diff")
	asJSON := f.Bool("json", false, "print the difference as JSON")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) != 2 {
		return usageErrorf("policy diff", "want two policies A B")
	}
	a, err := readPolicyFile(ops[0])
	if err != nil {
		return err
	}
	b, err := readPolicyFile(ops[1])
	if err != nil {
		return err
	}
	d, err := rtpolicy.Diff(a, b)
	if err != nil {
		return err
	}
	if *asJSON {
		js, _ := json.MarshalIndent(d, "", " ")
		fmt.Fprintf(e.stdout, "%s\n", js)
	} else {
		fmt.Fprint(e.stdout, d.String())
	}
	if !d.Empty() {
		return &exitError{code: 1}
	}
	return nil
}

func parseWhen(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-11-28T06:00:00Z) or 2026-11-28", s)
}

func cmdPolicyWindow(e *env, args []string) error {
	f := rtFlags(e, "window")
	dur := f.Duration("for", 0, "the window ends this long from now (e.g. 6h)")
	until := f.String("until", "", "the window ends at TIME (RFC 3339)")
	note := f.String("note", "", "why the window is open")
	out := f.String("out", "", "write the policy to FILE")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) != 2 || *out == "" {
		return usageErrorf("policy window", "want BASE OTHER and --out FILE")
	}
	if (*dur > 0) == (*until != "") {
		return usageErrorf("policy window", "give one of --for or --until")
	}
	now := time.Now()
	end := now.Add(*dur)
	if *until != "" {
		if end, err = parseWhen(*until); err != nil {
			return usageErrorf("policy window", "%v", err)
		}
	}
	if !end.After(now) {
		return usageErrorf("policy window", "the window would end at %s, in the past", end.UTC().Format(time.RFC3339))
	}
	base, err := readPolicyFile(ops[0])
	if err != nil {
		return err
	}
	other, err := readPolicyFile(ops[1])
	if err != nil {
		return err
	}
	p := rtpolicy.AddWindow(base, other, end, now, *note)
	n := 0
	if len(p.Windows) > 0 && p.Windows[len(p.Windows)-1].Until.Equal(end.UTC()) {
		for _, l := range p.Windows[len(p.Windows)-1].Digests {
			n += len(l)
		}
	}
	fmt.Fprintf(e.stderr, "intact: window until %s accepts %d more digests\n", end.UTC().Format(time.RFC3339), n)
	return writePolicyDoc(e, *out, p)
}

func cmdPolicySign(e *env, args []string) error {
	f := rtFlags(e, "sign")
	keyPath := f.String("key", "", "private key (PEM)")
	detached := f.Bool("detached", false, "write the canonical policy to --out and the signature to --out.sig")
	out := f.String("out", "", "write the signed policy to FILE")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) != 1 || *keyPath == "" {
		return usageErrorf("policy sign", "want --key KEY and one POLICY")
	}
	if *detached && (*out == "" || *out == "-") {
		return usageErrorf("policy sign", "--detached needs --out FILE (the signature goes to FILE.sig)")
	}
	key, err := sig.LoadPrivateKey(*keyPath)
	if err != nil {
		return fileError("signing key", *keyPath, err)
	}
	p, err := readPolicyFile(ops[0])
	if err != nil {
		return err
	}
	if *detached {
		canon, s, err := rtpolicy.SignDetached(p, key)
		if err != nil {
			return err
		}
		if err := writeOut(e, *out, canon); err != nil {
			return err
		}
		return writeOut(e, *out+".sig", s)
	}
	env, err := rtpolicy.Sign(p, key)
	if err != nil {
		return err
	}
	return writeOut(e, *out, env)
}

func cmdPolicyVerifySignature(e *env, args []string) error {
	f := rtFlags(e, "verify-signature")
	var certs stringList
	f.Var(&certs, "cert", "trusted signer certificate (repeatable)")
	sigPath := f.String("sig", "", "detached signature (default: the policy is an envelope)")
	out := f.String("out", "", "write the verified policy, without its signature, to FILE")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(ops) != 1 || len(certs) == 0 {
		return usageErrorf("policy verify-signature", "want --cert CERT and one POLICY")
	}
	cs, err := loadCerts(certs)
	if err != nil {
		return err
	}
	keys := sig.NewKeyring(cs...)
	b, err := readNamed("policy", ops[0], readfile.Policy)
	if err != nil {
		return err
	}
	var c *rtpolicy.Compiled
	var doc []byte
	var id uint32
	if *sigPath != "" {
		s, rerr := readfile.Read(*sigPath, readfile.Small)
		if rerr != nil {
			return fileError("signature", *sigPath, rerr)
		}
		c, id, err = rtpolicy.VerifyDetached(b, s, keys)
		doc = b
	} else {
		c, doc, id, err = rtpolicy.OpenSigned(b, keys)
	}
	switch {
	case errors.Is(err, rtpolicy.ErrBadPolicySig), errors.Is(err, rtpolicy.ErrUnknownSigner), errors.Is(err, rtpolicy.ErrUnsigned):
		errorf(e, "%s: %v", ops[0], err)
		if errors.Is(err, rtpolicy.ErrUnsigned) && *sigPath == "" {
			hintf(e, "a detached signature is given with --sig FILE")
		}
		return errIntegrity
	case err != nil:
		return fmt.Errorf("%s: %w", ops[0], err)
	}
	d := c.Document()
	fmt.Fprintf(e.stdout, "%s: signature ok (keyid %08x), policy %q release %d, %d paths\n", ops[0], id, d.Name, d.Release, len(c.Paths()))
	if *out != "" {
		return writeOut(e, *out, doc)
	}
	return nil
}

func cmdPolicyEval(e *env, args []string) error {
	f := rtFlags(e, "eval")
	at := f.String("at", "", "judge at TIME (applies the update windows open then; default now)")
	asJSON := f.Bool("json", false, "print the findings as JSON")
	eventLog := f.String("eventlog", "", "judge a TCG boot event `LOG` against POLICY, a measured-boot policy")
	ops, err := f.parse(args)
	if err != nil {
		return err
	}
	if *eventLog != "" {
		if len(ops) != 1 {
			return usageErrorf("policy eval", "with --eventlog, want one boot POLICY")
		}
		now := time.Now()
		if *at != "" {
			if now, err = parseWhen(*at); err != nil {
				return usageErrorf("policy eval", "%v", err)
			}
		}
		return evalBootPolicy(e, ops[0], *eventLog, now, *asJSON)
	}
	if len(ops) != 2 {
		return usageErrorf("policy eval", "want POLICY and a measurement LIST")
	}
	p, err := readPolicyFile(ops[0])
	if err != nil {
		return err
	}
	c, err := rtpolicy.Compile(p)
	if err != nil {
		return err
	}
	now := time.Now()
	if *at != "" {
		if now, err = parseWhen(*at); err != nil {
			return usageErrorf("policy eval", "%v", err)
		}
	}
	l, err := mlog.ReadFile(ops[1], mlog.Options{})
	if err != nil {
		return fileError("measurement list", ops[1], err)
	}
	findings := []rtpolicy.Finding{}
	for i, r := range l.UnverifiedRecords() {
		// As the verifier: a record whose template digest does not
		// match its data was altered, whatever the policy says.
		if err := r.CheckTemplateDigest(l.Bank()); err != nil {
			name, _ := r.Name()
			findings = append(findings, rtpolicy.Finding{Index: int64(i), Path: name, Reason: rtpolicy.TemplateHash})
			continue
		}
		if fd := c.EvaluateAt(now, int64(i), &r); fd != nil {
			findings = append(findings, *fd)
		}
	}
	if *asJSON {
		js, _ := json.MarshalIndent(findings, "", " ")
		fmt.Fprintf(e.stdout, "%s\n", js)
	} else {
		for _, fd := range findings {
			fmt.Fprintf(e.stdout, "%s\n", fd)
		}
		fmt.Fprintf(e.stdout, "%d records, %d fail the policy\n", l.Len(), len(findings))
	}
	if len(findings) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func encodeCert(c *x509.Certificate) string {
	return base64.StdEncoding.EncodeToString(c.Raw)
}
