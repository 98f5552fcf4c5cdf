// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"bytes"
	"encoding/pem"
	"fmt"
)

// KeyBlob is a TPM-held signing key as stored in a file: the TPM's
// wrapped object, loadable only under this TPM's storage root key.
//
// # Binary format (version 1)
//
//	magic      "ITKY"
//	version    1 byte = 1
//	parent     1 byte = 1 (SRK from the standard ECC P-256 template)
//	type       1 byte: 1 ec-p256, 2 rsa2048
//	public     2-byte size (1-2048) | TPM2B_PUBLIC contents
//	private    2-byte size (1-2048) | TPM2B_PRIVATE contents
//
// Files hold it PEM-armoured as an "INTACT TPM KEY" block
// ([KeyBlob.MarshalPEM], [ParseKeyBlobPEM]). The private part is wrapped
// by the TPM; the file is still written mode 0600, as any key.
type KeyBlob struct {
	Type    KeyType
	Public  []byte // TPM2B_PUBLIC contents
	Private []byte // TPM2B_PRIVATE contents
}

// PEMType is the PEM block type of a TPM key file.
const PEMType = "INTACT TPM KEY"

const (
	keyMagic   = "ITKY"
	keyVersion = 1
)

var keyTypeIDs = map[KeyType]byte{KeyECP256: 1, KeyRSA2048: 2}

// MarshalBinary encodes kb in the format above.
func (kb *KeyBlob) MarshalBinary() ([]byte, error) {
	if err := kb.check(); err != nil {
		return nil, err
	}
	b := append([]byte(keyMagic), keyVersion, srkECCP256, keyTypeIDs[kb.Type])
	b = appendSized(b, kb.Public)
	return appendSized(b, kb.Private), nil
}

// UnmarshalBinary decodes a key blob, rejecting anything not in the
// format above with a [*FormatError].
func (kb *KeyBlob) UnmarshalBinary(data []byte) error {
	r := &reader{what: "tpm key", b: data}
	if err := r.header(keyMagic, keyVersion); err != nil {
		return err
	}
	id := r.u8("type")
	var out KeyBlob
	for kt, v := range keyTypeIDs {
		if v == id {
			out.Type = kt
		}
	}
	if r.err == nil && out.Type == "" {
		r.fail("unknown key type %d", id)
	}
	out.Public = r.sized("public")
	out.Private = r.sized("private")
	if err := r.done(); err != nil {
		return err
	}
	*kb = out
	return nil
}

func (kb *KeyBlob) check() error {
	if _, ok := keyTypeIDs[kb.Type]; !ok {
		return &FormatError{What: "tpm key", Reason: fmt.Sprintf("unknown key type %q", kb.Type)}
	}
	if len(kb.Public) == 0 || len(kb.Public) > maxTPMBlob || len(kb.Private) == 0 || len(kb.Private) > maxTPMBlob {
		return &FormatError{What: "tpm key", Reason: fmt.Sprintf("public or private part empty or over %d bytes", maxTPMBlob)}
	}
	return nil
}

// MarshalPEM returns kb as an "INTACT TPM KEY" PEM block.
func (kb *KeyBlob) MarshalPEM() ([]byte, error) {
	b, err := kb.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: PEMType, Bytes: b}), nil
}

// ParseKeyBlobPEM parses a TPM key file: exactly one "INTACT TPM KEY"
// block without headers, nothing but white space around it.
func ParseKeyBlobPEM(data []byte) (*KeyBlob, error) {
	bad := func(reason string) error { return &FormatError{What: "tpm key", Reason: reason} }
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, bad("no PEM block")
	case block.Type != PEMType:
		return nil, bad(fmt.Sprintf("PEM block %q, want %q", block.Type, PEMType))
	case len(block.Headers) != 0:
		return nil, bad("unexpected PEM headers")
	case len(bytes.TrimSpace(rest)) != 0 || len(bytes.TrimSpace(data[:bytes.Index(data, []byte("-----BEGIN"))])) != 0:
		return nil, bad("data around the PEM block")
	}
	var kb KeyBlob
	if err := kb.UnmarshalBinary(block.Bytes); err != nil {
		return nil, err
	}
	return &kb, nil
}

// IsKeyBlobPEM reports whether data looks like a TPM key file (so a CLI
// can tell it from a software key).
func IsKeyBlobPEM(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "+PEMType+"-----"))
}
