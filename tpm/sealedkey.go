// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
)

// SealedKey is a secret sealed by [TPM.Seal]: the TPM's wrapped object
// (public and private parts, loadable only under this TPM's storage root
// key) plus the PCR selection and the values it was sealed to, kept to
// name the PCRs that changed when unsealing fails.
//
// # Binary format (version 1)
//
// [SealedKey.MarshalBinary] writes, all integers big-endian:
//
//	magic      "ITSK"
//	version    1 byte  = 1
//	parent     1 byte  = 1 (SRK from the standard ECC P-256 template)
//	flags      1 byte  bit 0: passphrase (PolicyAuthValue); others 0
//	bank       2 bytes = 0x000B (TPM_ALG_SHA256)
//	count      1 byte  number of PCRs, 1-24
//	count ×    index (1 byte, strictly ascending, < 24) | value (32 bytes)
//	public     2-byte size (1-2048) | TPM2B_PUBLIC contents
//	private    2-byte size (1-2048) | TPM2B_PRIVATE contents
//
// Nothing may follow. [SealedKey.UnmarshalBinary] accepts exactly this
// and nothing else: the blob is untrusted input. The TPM checks the
// integrity of the wrapped object itself when it loads it.
type SealedKey struct {
	PCRs       []int          // sha256-bank PCRs the key is sealed to, ascending
	Values     map[int][]byte // the sha256 values unsealing requires
	Passphrase bool           // the policy also requires the passphrase
	Public     []byte         // TPM2B_PUBLIC contents
	Private    []byte         // TPM2B_PRIVATE contents
}

const (
	sealedMagic   = "ITSK"
	sealedVersion = 1
	flagPass      = 1 << 0
)

// MarshalBinary encodes k in the format above.
func (k *SealedKey) MarshalBinary() ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	b := []byte(sealedMagic)
	var flags byte
	if k.Passphrase {
		flags |= flagPass
	}
	b = append(b, sealedVersion, srkECCP256, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMAlgSHA256))
	b = append(b, byte(len(k.PCRs)))
	for _, p := range k.PCRs {
		b = append(b, byte(p))
		b = append(b, k.Values[p]...)
	}
	b = appendSized(b, k.Public)
	b = appendSized(b, k.Private)
	return b, nil
}

// UnmarshalBinary decodes a sealed key, rejecting anything not in the
// format above with a [*FormatError].
func (k *SealedKey) UnmarshalBinary(data []byte) error {
	r := &reader{what: "sealed key", b: data}
	if err := r.header(sealedMagic, sealedVersion); err != nil {
		return err
	}
	flags := r.u8("flags")
	if r.err == nil && flags&^flagPass != 0 {
		r.fail("unknown flags 0x%02x", flags)
	}
	if bank := r.u16("bank"); r.err == nil && tpm2.TPMAlgID(bank) != tpm2.TPMAlgSHA256 {
		r.fail("pcr bank 0x%04x is not sha256", bank)
	}
	n := int(r.u8("pcr count"))
	if r.err == nil && (n == 0 || n > NumPCRs) {
		r.fail("%d pcrs (1-%d)", n, NumPCRs)
	}
	out := SealedKey{Values: make(map[int][]byte), Passphrase: flags&flagPass != 0}
	for i := 0; i < n && r.err == nil; i++ {
		p := int(r.u8("pcr index"))
		v := r.bytes(sealBank.Size(), "pcr value")
		if r.err == nil && (p >= NumPCRs || (i > 0 && p <= out.PCRs[i-1])) {
			r.fail("pcr index %d out of order or range", p)
		}
		out.PCRs = append(out.PCRs, p)
		out.Values[p] = bytes.Clone(v)
	}
	out.Public = r.sized("public")
	out.Private = r.sized("private")
	if err := r.done(); err != nil {
		return err
	}
	*k = out
	return nil
}

// check validates k's fields before it is encoded or used.
func (k *SealedKey) check() error {
	bad := func(format string, args ...any) error {
		return &FormatError{What: "sealed key", Reason: fmt.Sprintf(format, args...)}
	}
	if err := checkPCRs(k.PCRs); err != nil {
		return bad("%v", err)
	}
	if !slices.IsSorted(k.PCRs) {
		return bad("pcrs not ascending")
	}
	if len(k.Values) != len(k.PCRs) {
		return bad("%d values for %d pcrs", len(k.Values), len(k.PCRs))
	}
	for _, p := range k.PCRs {
		if len(k.Values[p]) != sealBank.Size() {
			return bad("pcr %d: %d-byte value", p, len(k.Values[p]))
		}
	}
	if len(k.Public) == 0 || len(k.Public) > maxTPMBlob || len(k.Private) == 0 || len(k.Private) > maxTPMBlob {
		return bad("public or private part empty or over %d bytes", maxTPMBlob)
	}
	return nil
}
