// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/intactsec/intact/appraise"
	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/sig"
)

// evmMetaFlags describe the kernel that checks security.evm: which
// protected xattrs it has enabled, its file-system UUID handling and its
// h_misc layout (evmctl --smack, --uuid, --m32).
type evmMetaFlags struct {
	uuid  string
	smack bool
	extra stringList
	m32   bool
}

func (m *evmMetaFlags) register(f *flagSet) {
	f.StringVar(&m.uuid, "uuid", "", "file-system `UUID` for HMACs and full EVM signatures (default: the file's file system; \"none\": leave it out, for kernels without CONFIG_EVM_ATTR_FSUUID)")
	f.BoolVar(&m.smack, "smack", false, "also protect SMACK64EXEC, SMACK64TRANSMUTE, SMACK64MMAP (CONFIG_EVM_EXTRA_SMACK_XATTRS)")
	f.Var(&m.extra, "evm-xattr", "an extra protected xattr `NAME` (security.*) the kernel has in evm_xattrs (repeatable, in its order)")
	f.BoolVar(&m.m32, "m32", false, "h_misc layout of a 32-bit kernel")
}

func (m *evmMetaFlags) parse(cmd string) (evm.Config, evm.UUIDSource, evm.Layout, error) {
	c := evm.Config{Smack: m.smack, Extra: m.extra}
	if err := c.Validate(); err != nil {
		return c, evm.UUIDSource{}, evm.Layout{}, usageErrorf(cmd, "%v", strings.TrimPrefix(err.Error(), "evm: "))
	}
	var u evm.UUIDSource
	switch m.uuid {
	case "":
	case "none":
		u.Omit = true
	default:
		b, err := evm.ParseUUID(m.uuid)
		if err != nil {
			return c, u, evm.Layout{}, usageErrorf(cmd, "--uuid: %v", strings.TrimPrefix(err.Error(), "evm: "))
		}
		u.Value = b
	}
	l := evm.NativeLayout()
	if m.m32 {
		l.Bits = 32
	}
	return c, u, l, nil
}

// passFlags say where a passphrase comes from; without either flag it is
// asked for on the terminal.
type passFlags struct {
	env   string
	stdin bool
	tpm   string // the TPM of a tpm-sealed key (tpm_evmkey.go)
}

func (p *passFlags) register(f *flagSet) {
	f.StringVar(&p.env, "passphrase-env", "", "read the passphrase from environment variable `VAR`")
	f.BoolVar(&p.stdin, "passphrase-stdin", false, "read the passphrase from the first line of standard input")
	f.StringVar(&p.tpm, "tpm", "", "the TPM that seals or holds a tpm-sealed EVM key (`SPEC`: default, /dev/tpmrm0, swtpm:HOST:PORT, sim)")
}

// maxPassphrase bounds what is read as a passphrase.
const maxPassphrase = 4096

// read returns the passphrase; confirm asks twice on a terminal.
func (p *passFlags) read(e *env, cmd, prompt string, confirm bool) ([]byte, error) {
	var pass []byte
	switch {
	case p.env != "" && p.stdin:
		return nil, usageErrorf(cmd, "--passphrase-env and --passphrase-stdin exclude each other")
	case p.env != "":
		pass = []byte(e.getenv(p.env))
		if len(pass) == 0 {
			return nil, usageErrorf(cmd, "environment variable %s (--passphrase-env) is empty or unset", p.env)
		}
	case p.stdin:
		line, err := bufio.NewReaderSize(io.LimitReader(e.stdin, maxPassphrase+2), maxPassphrase+2).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading the passphrase from standard input: %w", err)
		}
		pass = []byte(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"))
		if len(pass) == 0 {
			return nil, usageErrorf(cmd, "empty passphrase on standard input")
		}
	default:
		var err error
		if pass, err = askPassphrase(e, cmd, prompt, confirm); err != nil {
			return nil, err
		}
	}
	if len(pass) > maxPassphrase {
		return nil, usageErrorf(cmd, "passphrase longer than %d bytes", maxPassphrase)
	}
	return pass, nil
}

func askPassphrase(e *env, cmd, prompt string, confirm bool) ([]byte, error) {
	in, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, usageErrorf(cmd, "no passphrase: give --passphrase-env VAR or --passphrase-stdin, or run on a terminal")
	}
	fmt.Fprintf(e.stderr, "%s: ", prompt)
	pass, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, usageErrorf(cmd, "empty passphrase")
	}
	if confirm {
		fmt.Fprint(e.stderr, "repeat the passphrase: ")
		again, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the passphrase: %w", err)
		}
		if string(again) != string(pass) {
			return nil, usageErrorf(cmd, "the passphrases differ")
		}
	}
	return pass, nil
}

// loadEVMKey opens the EVM key file at path with a passphrase.
func loadEVMKey(e *env, cmd, path string, p *passFlags) ([]byte, error) {
	b, err := readNamed("evm key", path, readfile.Small)
	if err != nil {
		return nil, err
	}
	kf, err := evm.ParseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if kf.Kind == evm.KindTPMSealed {
		return unsealEVMKey(e, cmd, path, kf, p)
	}
	pass, err := p.read(e, cmd, "passphrase for "+path, false)
	if err != nil {
		return nil, err
	}
	key, err := kf.Open(pass)
	if errors.Is(err, evm.ErrWrongPassphrase) {
		return nil, withHint(fmt.Errorf("%s: %w", path, err), "nothing was written or verified")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// evmVerifyFlags are verify's EVM flags.
type evmVerifyFlags struct {
	keyPath  string
	certs    stringList
	require  bool
	optional bool
	pass     passFlags
	meta     evmMetaFlags
}

func (v *evmVerifyFlags) register(f *flagSet) {
	f.StringVar(&v.keyPath, "evmkey", "", "EVM key `FILE` to check security.evm HMACs (made by intact evmkey create); files without security.evm then fail")
	f.Var(&v.certs, "evm-cert", "certificate `FILE` trusted for security.evm signatures only (repeatable); files without security.evm then fail")
	f.BoolVar(&v.require, "require-evm", false, "fail files without security.evm, and HMACs when no --evmkey is given")
	f.BoolVar(&v.optional, "evm-optional", false, "with --evmkey or --evm-cert, do not fail files without security.evm (for migrations; warns)")
	v.pass.register(f)
	v.meta.register(f)
}

// options returns the EVM options of an appraisal. Signatures in
// security.evm are always checked (with the --cert and --evm-cert
// certificates), HMACs only with --evmkey. As in the kernel once EVM is
// initialized, a configured EVM key or EVM certificate makes security.evm
// required, unless --evm-optional.
func (v *evmVerifyFlags) options(e *env, imaCerts []*x509.Certificate) (*appraise.EVMOptions, error) {
	c, u, l, err := v.meta.parse("verify")
	if err != nil {
		return nil, err
	}
	configured := v.keyPath != "" || len(v.certs) > 0
	switch {
	case v.optional && v.require:
		return nil, usageErrorf("verify", "--evm-optional and --require-evm contradict each other")
	case v.optional && !configured:
		return nil, usageErrorf("verify", "--evm-optional needs --evmkey or --evm-cert (without them security.evm is optional already)")
	}
	o := &appraise.EVMOptions{Config: c, UUID: u, Layout: l, Require: v.require || (configured && !v.optional)}
	if len(v.certs) > 0 {
		o.Keys = sig.NewKeyring(imaCerts...)
		for _, p := range v.certs {
			cs, err := sig.LoadCertificates(p)
			if err != nil {
				return nil, fileError("evm certificate", p, err)
			}
			for _, cert := range cs {
				o.Keys.Add(cert)
			}
		}
	}
	if v.keyPath != "" {
		if o.HMACKey, err = loadEVMKey(e, "verify", v.keyPath, &v.pass); err != nil {
			return nil, err
		}
	}
	if v.optional {
		warnf(e, "--evm-optional: files with security.ima and no security.evm are NOT failed; whoever strips security.evm skips the metadata check (owner, mode, setuid, protected xattrs). Use it only while migrating.")
	}
	return o, nil
}
