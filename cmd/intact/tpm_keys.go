// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"errors"
	"fmt"

	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/tpm"
)

// keygenTPM is keygen --tpm: the key is made in the TPM under its storage
// root key; KEY holds the TPM-wrapped blob ("INTACT TPM KEY"), and the
// certificate is signed by the TPM.
func keygenTPM(e *env, spec, keyType, keyPath, certPath, cn string, days int) error {
	kt, err := tpm.ParseKeyType(keyType)
	if err != nil {
		return usageErrorf("keygen", "--tpm: %v", err)
	}
	t, err := openTPM(e, spec)
	if err != nil {
		return err
	}
	defer t.Close()
	kb, err := t.CreateKey(kt)
	if err != nil {
		return err
	}
	k, err := t.LoadKey(kb)
	if err != nil {
		return err
	}
	defer k.Close()
	blob, err := kb.MarshalPEM()
	if err != nil {
		return err
	}
	return writeKeyAndCert(e, k, blob, keyPath, certPath, keyType+" (tpm)", cn, days)
}

// loadAnySigner loads --key: a TPM key file ("INTACT TPM KEY") is loaded
// into the TPM named by spec (the default TPM when spec is empty), any
// other file is a software key. done releases the key.
func loadAnySigner(e *env, cmd, path, spec string) (s crypto.Signer, done func(), err error) {
	data, err := readNamed("key", path, readfile.Key)
	if err != nil {
		return nil, nil, err
	}
	if !tpm.IsKeyBlobPEM(data) {
		if spec != "" {
			return nil, nil, usageErrorf(cmd, "--tpm given, but %s is not a TPM key (intact keygen --tpm makes one)", path)
		}
		s, err := loadSigner(path)
		return s, func() {}, err
	}
	kb, err := tpm.ParseKeyBlobPEM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	t, err := openTPM(e, spec)
	if err != nil {
		return nil, nil, err
	}
	k, err := t.LoadKey(kb)
	if err != nil {
		t.Close()
		if errors.Is(err, tpm.ErrForeignKey) || errors.Is(err, tpm.ErrMalformed) {
			return nil, nil, withHint(fmt.Errorf("%s: %w", path, err),
				"a TPM key works only in the TPM that made it, until that TPM is cleared; is --tpm the right TPM?")
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, func() { k.Close(); t.Close() }, nil
}
