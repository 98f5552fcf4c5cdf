// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/sig"
)

const keygenUsage = `
Usage: intact keygen [--type TYPE] --key KEY.pem --cert CERT [--cn NAME] [--days N]

Makes a signing key and a self-signed X.509 certificate for it, fit for
the kernel's .ima keyring and for evmctl: keyUsage digitalSignature and a
SubjectKeyIdentifier whose last four bytes are the label keyid. The key is
written as PEM (PKCS#8, mode 0600); the certificate as DER when CERT ends
in .der, else PEM. Existing files are never overwritten.

With --tpm SPEC (see "intact tpm -h") the key (ec-p256 or rsa2048) is made
inside the TPM and never leaves it: KEY holds the TPM-wrapped key
("INTACT TPM KEY", usable only with that TPM) and the certificate is
signed by the TPM. docs/tpm.md.
`

func cmdKeygen(e *env, args []string) error {
	f := newFlags(e, "keygen", keygenUsage)
	keyType := f.String("type", "ec-p256", "key type: "+strings.Join(sig.KeyTypes, ", "))
	keyPath := f.String("key", "", "private key file to create (PEM)")
	certPath := f.String("cert", "", "certificate file to create (.der: DER, else PEM)")
	cn := f.String("cn", "intact signing key", "certificate subject common name")
	days := f.Int("days", 3650, "certificate validity in days")
	tpmSpec := f.String("tpm", "", "make the key in this TPM (`SPEC`: default, /dev/tpmrm0, swtpm:HOST:PORT, sim)")
	operands, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(operands) > 0:
		return usageErrorf("keygen", "unexpected argument %q", operands[0])
	case *keyPath == "" || *certPath == "":
		return usageErrorf("keygen", "--key and --cert are required")
	case *days < 1:
		return usageErrorf("keygen", "--days must be at least 1")
	}
	for _, p := range []string{*keyPath, *certPath} {
		if _, err := os.Lstat(p); err == nil {
			return withHint(fmt.Errorf("%s already exists", p), "intact keygen never overwrites a file; choose another name or remove it")
		}
	}
	if *tpmSpec != "" {
		return keygenTPM(e, *tpmSpec, *keyType, *keyPath, *certPath, *cn, *days)
	}
	key, err := sig.GenerateKey(*keyType)
	if err != nil {
		return usageErrorf("keygen", "%v", err)
	}
	keyPEM, err := sig.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	return writeKeyAndCert(e, key, keyPEM, *keyPath, *certPath, *keyType, *cn, *days)
}

// writeKeyAndCert writes the private key (exclusive, 0600) and a
// certificate for it; if the certificate cannot be written, the key file is
// removed again, so that nothing is left half-done.
func writeKeyAndCert(e *env, key crypto.Signer, keyFile []byte, keyPath, certPath, keyType, cn string, days int) error {
	keyID, err := sig.KeyID(key.Public())
	if err != nil {
		return err
	}
	der, err := sig.CreateCertificate(key, cn, time.Duration(days)*24*time.Hour)
	if err != nil {
		return fmt.Errorf("creating certificate: %w", err)
	}
	cert := der
	if !strings.HasSuffix(strings.ToLower(certPath), ".der") {
		cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	if err := atomicfile.WriteFile(keyPath, keyFile, 0o600, true); err != nil {
		return existsHint(err)
	}
	if err := atomicfile.WriteFile(certPath, cert, 0o644, true); err != nil {
		os.Remove(keyPath)
		return existsHint(err)
	}
	fmt.Fprintf(e.stderr, "intact: created %s key %s (keyid %08x) and certificate %s\n", keyType, keyPath, keyID, certPath)
	return nil
}

func existsHint(err error) error {
	if errors.Is(err, os.ErrExist) {
		return withHint(err, "intact keygen never overwrites a file; choose another name or remove it")
	}
	return err
}
