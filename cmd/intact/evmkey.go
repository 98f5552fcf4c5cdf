// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/internal/readfile"
)

const evmkeyUsage = `
Usage: intact evmkey create --out FILE (--passphrase-env VAR | --passphrase-stdin)
       intact evmkey create --out FILE --tpm SPEC --pcrs LIST [--passphrase-env VAR | --passphrase-stdin]
       intact evmkey reseal --evmkey FILE [--tpm SPEC] [--pcrs LIST] [--pcr-value N=HEX]...
       intact evmkey export --evmkey FILE --kmk KMKFILE [--kmk-desc user:NAME] [--out BLOB]

Makes a random 32-byte EVM key (the key of security.evm HMACs) and stores
it only wrapped: XChaCha20-Poly1305 under a key derived from the
passphrase with argon2id; the argon2id cost is stored in the file. Without
--passphrase-env or --passphrase-stdin the passphrase is asked for on the
terminal. FILE is created with mode 0600 and never overwritten.

export writes the key as the kernel's "encrypted" key type loads it,
encrypted under the user master key whose raw bytes are in KMKFILE (the
payload of "keyctl padd user kmk @u < KMKFILE"):

    keyctl add encrypted evm-key "load $(cat BLOB)" @u

With --tpm and --pcrs the key is instead sealed by the TPM to the current
sha256 values of the PCRs in LIST (e.g. 0,2,4,7), and to the passphrase as
well when --passphrase-env or --passphrase-stdin is given. intact hmac and
intact verify unseal it (--tpm SPEC); once a sealed PCR changes they
refuse, naming the PCRs. Resettable PCRs (16, 20-23) and the runtime
measurement PCRs (10, 13) are refused: they do not guard a key
(--allow-unsafe-pcrs overrides, loudly). "intact evmkey reseal -h" moves the key to new
PCR values before a planned update. docs/tpm.md.

See docs/evm.md for the format and for loading the key into the kernel.
`

func cmdEVMKey(e *env, args []string) error {
	if len(args) > 0 && args[0] == "export" {
		return cmdEVMKeyExport(e, args[1:])
	}
	if len(args) > 0 && args[0] == "reseal" {
		return cmdEVMKeyReseal(e, args[1:])
	}
	if len(args) == 0 || args[0] != "create" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(e.stdout, evmkeyUsage[1:])
			return errHelp
		}
		return usageErrorf("evmkey", "want \"intact evmkey create ...\", \"intact evmkey export ...\" or \"intact evmkey reseal ...\"")
	}
	f := newFlags(e, "evmkey", evmkeyUsage)
	out := f.String("out", "", "key `FILE` to create")
	pcrs := f.String("pcrs", "", "with --tpm: seal the key to these PCRs (`LIST`, e.g. 0,2,4,7)")
	unsafePCRs := f.Bool(unsafePCRsFlag, false, unsafePCRsHelp)
	var pass passFlags
	pass.register(f)
	kdf := evm.DefaultKDF
	f.Func("kdf-time", fmt.Sprintf("argon2id passes (default %d)", kdf.Time), uintFlag(func(n uint64) { kdf.Time = uint32(n) }))
	f.Func("kdf-memory", fmt.Sprintf("argon2id memory in KiB (default %d)", kdf.MemoryKiB), uintFlag(func(n uint64) { kdf.MemoryKiB = uint32(n) }))
	f.Func("kdf-threads", fmt.Sprintf("argon2id lanes (default %d)", kdf.Threads), uintFlag(func(n uint64) { kdf.Threads = uint8(min(n, 255)) }))
	operands, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	switch {
	case len(operands) > 0:
		return usageErrorf("evmkey", "unexpected operand %q", operands[0])
	case *out == "":
		return usageErrorf("evmkey", "--out is required")
	}
	if _, err := os.Lstat(*out); err == nil {
		return withHint(fmt.Errorf("%s already exists", *out), "intact never overwrites a key; remove it first or choose another name")
	}
	if pass.tpm != "" || *pcrs != "" {
		return evmkeyCreateTPM(e, *out, *pcrs, *unsafePCRs, &pass)
	}
	passphrase, err := pass.read(e, "evmkey", "passphrase for the new evm key", true)
	if err != nil {
		return err
	}
	key, err := evm.NewKey()
	if err != nil {
		return err
	}
	kf, err := evm.SealPassphrase(key, passphrase, kdf)
	if err != nil {
		return usageErrorf("evmkey", "%v", err)
	}
	if err := atomicfile.WriteFile(*out, kf.Marshal(), 0o600, true); err != nil {
		if errors.Is(err, os.ErrExist) {
			return withHint(fmt.Errorf("%s already exists", *out), "intact never overwrites a key")
		}
		return err
	}
	return nil
}

func uintFlag(set func(uint64)) func(string) error {
	return func(s string) error {
		var n uint64
		if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s {
			return fmt.Errorf("want a number")
		}
		set(n)
		return nil
	}
}

// maxMasterKey bounds a user key payload read from --kmk (the kernel's
// limit for user keys is 32767 bytes).
const maxMasterKey = 32767

func cmdEVMKeyExport(e *env, args []string) error {
	f := newFlags(e, "evmkey", evmkeyUsage)
	keyPath := f.String("evmkey", "", "EVM key `FILE` to export")
	kmkPath := f.String("kmk", "", "`FILE` with the raw bytes of the user master key")
	desc := f.String("kmk-desc", "user:kmk", "the master key as the kernel names it: user:NAME")
	out := f.String("out", "", "write the blob to `FILE` (default: standard output)")
	var pass passFlags
	pass.register(f)
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(operands) > 0:
		return usageErrorf("evmkey", "unexpected operand %q", operands[0])
	case *keyPath == "" || *kmkPath == "":
		return usageErrorf("evmkey", "--evmkey and --kmk are required")
	}
	mk, err := readNamed("master key", *kmkPath, readfile.Small)
	if err != nil {
		return err
	}
	if len(mk) == 0 || len(mk) > maxMasterKey {
		return fmt.Errorf("%s: master key of %d bytes (want 1 to %d)", *kmkPath, len(mk), maxMasterKey)
	}
	key, err := loadEVMKey(e, "evmkey", *keyPath, &pass)
	if err != nil {
		return err
	}
	blob, err := evm.SealKernelBlob(key, mk, *desc)
	if err != nil {
		return usageErrorf("evmkey", "%v", err)
	}
	if *out == "" {
		_, err = fmt.Fprintln(e.stdout, blob)
		return err
	}
	if err := atomicfile.WriteFile(*out, []byte(blob+"\n"), 0o600, true); err != nil {
		if errors.Is(err, os.ErrExist) {
			return withHint(fmt.Errorf("%s already exists", *out), "intact never overwrites a key")
		}
		return err
	}
	return nil
}
