// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/intactsec/intact/attest/ekcert"
	"github.com/intactsec/intact/attest/verifier"
)

// cmdEK shows an agent's endorsement key: the hash an --ek-allow file
// names it by, its certificate, and (with --ek-ca or --ek-allow) whether
// a verifier with that trust would enroll it.
const ekUsage = `
Usage: intact-verifier ek ADDR [--cert FILE] [--ek-ca DIR]... [--ek-allow FILE]...

Asks the agent at ADDR for its endorsement key and prints its hash (the
form --ek-allow files list), its certificate and, with --ek-ca or
--ek-allow, whether serve would trust it; exit 1 if it would not.
`

func cmdEK(e *env, args []string) error {
	fs := flag.NewFlagSet("ek", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	certFile := fs.String("cert", "", "the agent's TLS certificate `FILE` (PEM), pinned; default: trusted on first use")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the request to the agent")
	var cas, allows []string
	fs.Func("ek-ca", "judge the EK against the TPM makers' CA certificates in `DIR` (repeatable)", func(v string) error { cas = append(cas, v); return nil })
	fs.Func("ek-allow", "judge the EK against the EK hashes `FILE` lists (repeatable)", func(v string) error { allows = append(allows, v); return nil })
	if e.describe != nil {
		e.describe(fs, ekUsage) // the reference (docs_test.go)
		return errDescribed
	}
	words, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return printHelp(e, ekUsage, fs)
	}
	if err != nil {
		return err
	}
	if len(words) != 1 {
		return usagef("usage: ek ADDR [--cert FILE] [--ek-ca DIR]... [--ek-allow FILE]...")
	}
	var pin []byte
	if *certFile != "" {
		b, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		cs, err := ekcert.ParseCertificates(b)
		if err != nil {
			return fmt.Errorf("%s: %w", *certFile, err)
		}
		pin = cs[0].Raw
	}
	var trust *ekcert.Trust
	if len(cas) > 0 || len(allows) > 0 {
		if trust, err = verifier.EKTrustFiles(cas, allows)(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	info, err := verifier.InspectEK(ctx, words[0], pin, *timeout, trust, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ek-hash:     %s\n", info.KeyHash)
	switch c := info.Cert; {
	case c == nil && info.Err == nil:
		fmt.Fprintf(e.stdout, "certificate: none (the TPM has no EK certificate in NV)\n")
	case c != nil:
		fmt.Fprintf(e.stdout, "certificate: issuer %q, tpm %s %s %s, valid until %s\n", c.Issuer.String(),
			c.TPM.Manufacturer, c.TPM.Model, c.TPM.Version, c.NotAfter.UTC().Format(time.DateOnly))
		for _, l := range c.Leniencies {
			fmt.Fprintf(e.stdout, "leniency:    %s\n", l)
		}
	}
	if info.Chain > 0 {
		fmt.Fprintf(e.stdout, "nv chain:    %d certificates\n", info.Chain)
	}
	switch {
	case info.Err != nil:
		fmt.Fprintf(e.stdout, "trust:       refused: %v\n", info.Err)
		return errEKUntrusted
	case info.Result != nil:
		fmt.Fprintf(e.stdout, "trust:       %s\n", info.Result.Verdict())
	}
	return nil
}

// errEKUntrusted makes the exit status 1 (as errFailed).
var errEKUntrusted = fmt.Errorf("%w: endorsement key not trusted", errFailed)
