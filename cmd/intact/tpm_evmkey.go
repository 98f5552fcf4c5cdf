// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm"
)

const evmkeyResealUsage = `
Usage: intact evmkey reseal --evmkey FILE [--tpm SPEC] [--pcrs LIST] [--pcr-value N=HEX]...
                            [--passphrase-env VAR | --passphrase-stdin]

Moves a TPM-sealed EVM key to new expected PCR values, for a planned
kernel or firmware update: the key is unsealed (the PCRs must still hold
the values it was sealed to, and its passphrase, if it has one, must be
given) and sealed again, to the PCRs in LIST (default: the same PCRs) with
the values given by --pcr-value (sha256, 64 hex digits) or, for PCRs not
named there, their current values. The passphrase stays the same. FILE is
replaced atomically.

Example, before an update that will change PCR 4 to a known value:
    intact evmkey reseal --evmkey /etc/intact/evm.key --pcr-value 4=3f1a…
`

// evmkeyCreateTPM is evmkey create --tpm --pcrs: the key is sealed by the
// TPM to the PCRs (and the passphrase, if one is given by flag).
func evmkeyCreateTPM(e *env, out, pcrList string, unsafePCRs bool, p *passFlags) error {
	switch {
	case p.tpm == "":
		return usageErrorf("evmkey", "--pcrs needs --tpm SPEC (the TPM that seals the key)")
	case pcrList == "":
		return usageErrorf("evmkey", "--tpm needs --pcrs LIST (the PCRs to seal the key to, e.g. 0,2,4,7)")
	}
	pcrs, err := tpm.ParsePCRList(pcrList)
	if err != nil {
		return usageErrorf("evmkey", "--pcrs: %v", err)
	}
	if err := checkSealPCRs(e, pcrs, unsafePCRs); err != nil {
		return err
	}
	var pass []byte
	if p.env != "" || p.stdin {
		if pass, err = p.read(e, "evmkey", "passphrase", false); err != nil {
			return err
		}
	}
	t, err := openTPM(e, p.tpm)
	if err != nil {
		return err
	}
	defer t.Close()
	key, err := evm.NewKey()
	if err != nil {
		return err
	}
	defer clear(key)
	sk, err := t.Seal(key, tpm.SealOptions{PCRs: pcrs, Passphrase: pass})
	if err != nil {
		return err
	}
	if err := writeSealedKeyFile(out, sk, true); err != nil {
		if errors.Is(err, os.ErrExist) {
			return withHint(fmt.Errorf("%s already exists", out), "intact never overwrites a key")
		}
		return err
	}
	fmt.Fprintf(e.stderr, "intact: sealed a new evm key to pcrs %s (sha256) of %s%s: %s\n",
		pcrString(pcrs), t.Spec(), map[bool]string{true: " and a passphrase"}[len(pass) > 0], out)
	return nil
}

// unsafePCRsFlag forces sealing to PCRs that do not guard a key.
const (
	unsafePCRsFlag = "allow-unsafe-pcrs"
	unsafePCRsHelp = "DANGEROUS: seal to resettable PCRs (16, 20-23) or the runtime measurement PCRs (10, 13) anyway"
)

// sealPCRProblem says why sealing to pcr protects nothing, or "".
// Resettable PCRs go back to a known value on request (PCR 16, the debug
// PCR, from any locality; 20-23 from the localities the platform allows
// software, in practice tpm2_pcrreset 23), so whoever can talk to the TPM
// resets and re-extends them to the sealed values. PCR 10 (the kernel's
// IMA) and mlog.DefaultPCR (13, intact's) change with every measurement
// at run time: a key sealed to them stops opening as soon as the machine
// runs anything new.
func sealPCRProblem(pcr int) string {
	switch {
	case pcr == 16 || (pcr >= 20 && pcr <= 23):
		return "resettable (tpm2_pcrreset restores it, and then the sealed value can be extended again)"
	case pcr == 10 || pcr == mlog.DefaultPCR:
		return "a runtime measurement PCR (every new measurement changes it, so the key stops opening)"
	}
	return ""
}

// checkSealPCRs refuses PCRs that do not guard a sealed key, unless
// forced; forced, it warns for each.
func checkSealPCRs(e *env, pcrs []int, force bool) error {
	var bad []string
	for _, p := range pcrs {
		if why := sealPCRProblem(p); why != "" {
			bad = append(bad, fmt.Sprintf("pcr %d is %s", p, why))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if !force {
		return withHint(fmt.Errorf("refusing to seal: %s", strings.Join(bad, "; ")),
			"seal to boot PCRs such as 0,2,4,7; --"+unsafePCRsFlag+" overrides this (the seal is then worthless against root)")
	}
	for _, b := range bad {
		fmt.Fprintf(e.stderr, "intact: WARNING: --%s: sealing anyway although %s; this seal does not protect the key\n", unsafePCRsFlag, b)
	}
	return nil
}

// droppedPCRs returns the PCRs in old that are not in new.
func droppedPCRs(old, new []int) []int {
	var d []int
	for _, p := range old {
		if !slices.Contains(new, p) {
			d = append(d, p)
		}
	}
	return d
}

func writeSealedKeyFile(path string, sk *tpm.SealedKey, exclusive bool) error {
	blob, err := sk.MarshalBinary()
	if err != nil {
		return err
	}
	kf, err := evm.NewTPMSealedKeyFile(blob)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, kf.Marshal(), 0o600, exclusive)
}

func pcrString(pcrs []int) string {
	s := make([]string, len(pcrs))
	for i, p := range pcrs {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// parseSealed decodes the TPM blob of a tpm-sealed key file.
func parseSealed(path string, kf *evm.KeyFile) (*tpm.SealedKey, error) {
	var sk tpm.SealedKey
	if err := sk.UnmarshalBinary(kf.Sealed); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sk, nil
}

// unsealEVMKey opens a tpm-sealed EVM key file with the TPM named by
// --tpm (and the passphrase, if the key has one).
func unsealEVMKey(e *env, cmd, path string, kf *evm.KeyFile, p *passFlags) ([]byte, error) {
	sk, err := parseSealed(path, kf)
	if err != nil {
		return nil, err
	}
	var pass []byte
	if sk.Passphrase {
		if pass, err = p.read(e, cmd, "passphrase for "+path, false); err != nil {
			return nil, err
		}
	}
	t, err := openTPM(e, p.tpm)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	key, err := kf.OpenSealed(func([]byte) ([]byte, error) { return t.Unseal(sk, pass) })
	if err != nil {
		return nil, unsealError(path, err)
	}
	return key, nil
}

func unsealError(path string, err error) error {
	err = fmt.Errorf("%s: %w", path, err)
	var pe *tpm.PCRMismatchError
	switch {
	case errors.As(err, &pe):
		return withHint(err, "the boot state differs from the one the key was sealed to; for a planned update, run \"intact evmkey reseal\" before it (docs/tpm.md)")
	case errors.Is(err, tpm.ErrWrongPassphrase):
		return withHint(err, "nothing was written or verified; repeated wrong passphrases lock the TPM out")
	case errors.Is(err, tpm.ErrLockout):
		return withHint(err, "after repeated wrong passphrases the TPM refuses them for a while (tpm2_dictionarylockout shows and, with the lockout authorization, resets it)")
	case errors.Is(err, tpm.ErrForeignKey):
		return withHint(err, "a sealed key opens only in the TPM that sealed it, until that TPM is cleared; is --tpm the right TPM?")
	}
	return err
}

func cmdEVMKeyReseal(e *env, args []string) error {
	f := newFlags(e, "evmkey", evmkeyResealUsage)
	path := f.String("evmkey", "", "tpm-sealed EVM key `FILE` to reseal (replaced)")
	pcrList := f.String("pcrs", "", "seal to these PCRs (`LIST`, default: the same PCRs)")
	unsafePCRs := f.Bool(unsafePCRsFlag, false, unsafePCRsHelp)
	var values stringList
	f.Var(&values, "pcr-value", "expected sha256 value of a PCR after the update (`N=HEX`, repeatable)")
	var pass passFlags
	pass.register(f)
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(operands) > 0:
		return usageErrorf("evmkey", "unexpected operand %q", operands[0])
	case *path == "":
		return usageErrorf("evmkey", "--evmkey is required")
	}
	b, err := readNamed("evm key", *path, readfile.Small)
	if err != nil {
		return err
	}
	kf, err := evm.ParseKeyFile(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	if kf.Kind != evm.KindTPMSealed {
		return usageErrorf("evmkey", "%s is a %s key, not tpm-sealed", *path, kf.Kind)
	}
	sk, err := parseSealed(*path, kf)
	if err != nil {
		return err
	}
	pcrs := sk.PCRs
	if *pcrList != "" {
		if pcrs, err = tpm.ParsePCRList(*pcrList); err != nil {
			return usageErrorf("evmkey", "--pcrs: %v", err)
		}
	}
	if err := checkSealPCRs(e, pcrs, *unsafePCRs); err != nil {
		return err
	}
	if dropped := droppedPCRs(sk.PCRs, pcrs); len(dropped) > 0 {
		fmt.Fprintf(e.stderr, "intact: warning: the key will no longer be sealed to pcrs %s (sealed to %s now): whatever those PCRs measured no longer guards the key\n",
			pcrString(dropped), pcrString(sk.PCRs))
	}
	given, err := parsePCRValues(values, pcrs)
	if err != nil {
		return err
	}
	var passphrase []byte
	if sk.Passphrase {
		if passphrase, err = pass.read(e, "evmkey", "passphrase for "+*path, false); err != nil {
			return err
		}
	}
	t, err := openTPM(e, pass.tpm)
	if err != nil {
		return err
	}
	defer t.Close()
	vals, err := t.ReadPCRs(crypto.SHA256, pcrs)
	if err != nil {
		return err
	}
	for p, v := range given {
		vals[p] = v
	}
	nk, err := t.Reseal(sk, passphrase, tpm.SealOptions{PCRs: pcrs, Values: vals, Passphrase: passphrase})
	if err != nil {
		return unsealError(*path, err)
	}
	if err := writeSealedKeyFile(*path, nk, false); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "intact: resealed %s to pcrs %s (sha256; %d given values, the others current)\n",
		*path, pcrString(pcrs), len(given))
	return nil
}

// parsePCRValues parses --pcr-value N=HEX flags; each N must be in pcrs.
func parsePCRValues(flags []string, pcrs []int) (map[int][]byte, error) {
	out := map[int][]byte{}
	for _, s := range flags {
		n, h, ok := strings.Cut(s, "=")
		p, err := strconv.Atoi(n)
		if !ok || err != nil {
			return nil, usageErrorf("evmkey", "--pcr-value %q: want N=HEX", s)
		}
		if !slices.Contains(pcrs, p) {
			return nil, usageErrorf("evmkey", "--pcr-value %q: pcr %d is not among the sealed pcrs %s", s, p, pcrString(pcrs))
		}
		v, err := hex.DecodeString(h)
		if err != nil || len(v) != crypto.SHA256.Size() {
			return nil, usageErrorf("evmkey", "--pcr-value %q: want 64 hex digits (a sha256 value)", s)
		}
		if _, dup := out[p]; dup {
			return nil, usageErrorf("evmkey", "--pcr-value: pcr %d given twice", p)
		}
		out[p] = v
	}
	return out, nil
}
