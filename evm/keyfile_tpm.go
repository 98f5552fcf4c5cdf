// SPDX-License-Identifier: Apache-2.0

package evm

// KindTPMSealed: the key is sealed by a TPM to PCR values (and maybe a
// passphrase). The file holds one field after the kind line:
//
//	intact-evm-key v1
//	kind tpm-sealed
//	sealed <the tpm package's SealedKey blob, base64 without padding>
//
// The blob is opaque here (package evm has no TPM code): its own strict
// parser is tpm.SealedKey.UnmarshalBinary, and the TPM checks the wrapped
// object's integrity when it loads it.
const KindTPMSealed Kind = "tpm-sealed"

// maxSealed bounds the sealed blob (a SealedKey is well under 2 KiB).
const maxSealed = 8192

// NewTPMSealedKeyFile returns a key file of kind tpm-sealed holding blob.
func NewTPMSealedKeyFile(blob []byte) (*KeyFile, error) {
	if len(blob) == 0 || len(blob) > maxSealed {
		return nil, badKeyFile("sealed blob of %d bytes", len(blob))
	}
	return &KeyFile{Kind: KindTPMSealed, Sealed: append([]byte(nil), blob...)}, nil
}

func (k *KeyFile) decodeSealed(f map[string]string) error {
	v, err := b64.DecodeString(f["sealed"])
	if err != nil {
		return badKeyFile("sealed: %v", err)
	}
	if len(v) == 0 || len(v) > maxSealed {
		return badKeyFile("sealed blob of %d bytes", len(v))
	}
	k.Sealed = v
	return nil
}

// OpenSealed returns the key of a tpm-sealed key file: unseal gets the
// sealed blob and returns the key (the caller's TPM code does this).
func (k *KeyFile) OpenSealed(unseal func(blob []byte) ([]byte, error)) ([]byte, error) {
	if k.Kind != KindTPMSealed {
		return nil, badKeyFile("evm key of kind %q is not tpm-sealed", k.Kind)
	}
	key, err := unseal(k.Sealed)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 || len(key) > MaxKeySize {
		return nil, badKeyFile("unsealed key of %d bytes", len(key))
	}
	return key, nil
}
