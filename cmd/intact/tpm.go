// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/intactsec/intact/tpm"
)

const tpmUsage = `
Usage: intact tpm pcrs [--tpm SPEC] [--bank sha1|sha256|sha384|sha512] [--json]
       intact tpm info [--tpm SPEC] [--json]

pcrs prints the PCR values of every allocated bank (or of one bank), as
tpm2_pcrread does. info prints the TPM's manufacturer, vendor string,
firmware version, PCR banks, and whether an endorsement key (EK) and an EK
certificate are provisioned.

SPEC names the TPM, for every command that takes --tpm:
    default          /dev/tpmrm0 if present, else /dev/tpm0 (the default)
    /dev/tpmrm0      a TPM device
    swtpm:HOST:PORT  a swtpm (socket --tpm2 --server type=tcp,port=PORT;
                     control channel on PORT+1)
    sim              an embedded simulator, fresh in every run, for tests
                     and demonstrations only: nothing sealed to it is secret;
                     only in builds with -tags intact_sim (the quickstart's),
                     release builds refuse it (exit status 2)

Examples:
    intact tpm pcrs --bank sha256
    intact tpm info --tpm swtpm:127.0.0.1:2321 --json
`

func cmdTPM(e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("tpm", "want \"intact tpm pcrs\" or \"intact tpm info\"")
	}
	switch args[0] {
	case "pcrs":
		return cmdTPMPCRs(e, args[1:])
	case "info":
		return cmdTPMInfo(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, tpmUsage[1:])
		return errHelp
	}
	return usageErrorf("tpm", "unknown tpm command %q (want pcrs or info)", args[0])
}

// tpmFlag registers --tpm SPEC on f.
func tpmFlag(f *flagSet) *string {
	return f.String("tpm", tpm.DefaultSpec, "the TPM: default, a device path, swtpm:HOST:PORT or sim")
}

// openTPM opens the TPM named by spec; a missing or busy TPM gets a hint.
func openTPM(e *env, spec string) (*tpm.TPM, error) {
	t, err := e.tpms.Open(spec)
	switch {
	case errors.Is(err, tpm.ErrNoSimulator):
		return nil, &exitError{code: 2, err: noSimulatorError(), hints: []string{noSimulatorHint()}}
	case errors.Is(err, tpm.ErrBadSpec):
		return nil, withHint(err, "run \"intact tpm -h\" for the TPM specs")
	case errors.Is(err, tpm.ErrNotPresent):
		return nil, withHint(err, "is the TPM enabled in the firmware, and its driver (tpm_tis, tpm_crb) loaded?")
	case errors.Is(err, tpm.ErrBusy):
		return nil, withHint(err, "another program holds the TPM; use /dev/tpmrm0 (the kernel's resource manager) or try again")
	case err != nil:
		return nil, err
	}
	if spec == tpm.SimSpec {
		warnf(e, "using the embedded TPM simulator: nothing it holds is secret")
	}
	return t, nil
}

// noSimulatorError is --tpm sim in a build without the simulator.
func noSimulatorError() error {
	return fmt.Errorf("--tpm %s: this build has no TPM simulator (build with -tags %s)", tpm.SimSpec, tpm.SimBuildTag)
}

// noSimulatorHint says which TPMs a release build takes and how to build
// one with the simulator.
func noSimulatorHint() string {
	return fmt.Sprintf("release builds use a TPM device (default, /dev/tpmrm0) or a swtpm (swtpm:HOST:PORT); "+
		"for tests and demonstrations: go build -tags %s ./cmd/intact (scripts/quickstart.sh does)", tpm.SimBuildTag)
}

type jsonPCR struct {
	PCR   int    `json:"pcr"`
	Value string `json:"value"`
}

type jsonBank struct {
	Bank string    `json:"bank"`
	PCRs []jsonPCR `json:"pcrs"`
}

func cmdTPMPCRs(e *env, args []string) error {
	f := newFlags(e, "tpm", tpmUsage)
	spec := tpmFlag(f)
	bankName := f.String("bank", "", "print only this bank")
	asJSON := f.Bool("json", false, "print JSON: {\"tpm\": SPEC, \"banks\": [{\"bank\": NAME, \"pcrs\": [{\"pcr\": N, \"value\": HEX}]}]}")
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(operands) > 0 {
		return usageErrorf("tpm", "unexpected operand %q", operands[0])
	}
	if *bankName != "" {
		if _, err := tpm.ParseBank(*bankName); err != nil {
			return usageErrorf("tpm", "--bank: %v", err)
		}
	}
	t, err := openTPM(e, *spec)
	if err != nil {
		return err
	}
	defer t.Close()
	banks, err := t.Banks()
	if err != nil {
		return err
	}
	var out []jsonBank
	for _, b := range banks {
		name := tpm.BankName(b.Hash)
		if *bankName != "" && name != *bankName {
			continue
		}
		vals, err := t.ReadPCRs(b.Hash, b.PCRs)
		if err != nil {
			return err
		}
		jb := jsonBank{Bank: name}
		for _, p := range b.PCRs {
			jb.PCRs = append(jb.PCRs, jsonPCR{PCR: p, Value: hex.EncodeToString(vals[p])})
		}
		out = append(out, jb)
	}
	if *bankName != "" && len(out) == 0 {
		return fmt.Errorf("tpm: the %s bank is not allocated on %s", *bankName, t.Spec())
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(struct {
			TPM   string     `json:"tpm"`
			Banks []jsonBank `json:"banks"`
		}{t.Spec(), out})
	}
	for _, b := range out {
		fmt.Fprintf(e.stdout, "%s:\n", b.Bank)
		for _, p := range b.PCRs {
			fmt.Fprintf(e.stdout, "  %-2d: 0x%s\n", p.PCR, strings.ToUpper(p.Value))
		}
	}
	return nil
}

func cmdTPMInfo(e *env, args []string) error {
	f := newFlags(e, "tpm", tpmUsage)
	spec := tpmFlag(f)
	asJSON := f.Bool("json", false, "print JSON")
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(operands) > 0 {
		return usageErrorf("tpm", "unexpected operand %q", operands[0])
	}
	t, err := openTPM(e, *spec)
	if err != nil {
		return err
	}
	defer t.Close()
	info, err := t.Info()
	if err != nil {
		return err
	}
	var banks []string
	for _, b := range info.Banks {
		banks = append(banks, tpm.BankName(b.Hash))
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(struct {
			TPM             string   `json:"tpm"`
			Manufacturer    string   `json:"manufacturer"`
			VendorString    string   `json:"vendor_string"`
			FirmwareVersion string   `json:"firmware_version"`
			SpecRevision    string   `json:"spec_revision"`
			Banks           []string `json:"banks"`
			EKPersistent    bool     `json:"ek_persistent"`
			EKCertificate   bool     `json:"ek_certificate"`
		}{info.Spec, info.Manufacturer, info.VendorString, info.FirmwareVersion,
			info.SpecRevision, banks, info.EKPersistent, info.EKCertificate})
	}
	fmt.Fprintf(e.stdout, "tpm:              %s\n", info.Spec)
	fmt.Fprintf(e.stdout, "manufacturer:     %s\n", info.Manufacturer)
	fmt.Fprintf(e.stdout, "vendor string:    %s\n", info.VendorString)
	fmt.Fprintf(e.stdout, "firmware version: %s\n", info.FirmwareVersion)
	fmt.Fprintf(e.stdout, "spec revision:    %s\n", info.SpecRevision)
	fmt.Fprintf(e.stdout, "pcr banks:        %v\n", banks)
	fmt.Fprintf(e.stdout, "ek present:       %s\n", yesNo(info.EKPersistent))
	fmt.Fprintf(e.stdout, "ek certificate:   %s\n", yesNo(info.EKCertificate))
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
