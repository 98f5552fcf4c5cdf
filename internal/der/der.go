// SPDX-License-Identifier: Apache-2.0

// Package der reads the framing of DER data: where one element ends.
// Shared by the TPM's NV certificate chains (tpm) and EK certificates with
// trailing padding (attest/ekcert), which must not import each other.
package der

// SeqLen returns the length of the DER SEQUENCE at the start of b, header
// included (definite lengths of up to three bytes only), and false when b
// does not start with one.
func SeqLen(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	l := int(b[1])
	if l < 0x80 {
		return 2 + l, true
	}
	n := l & 0x7f
	if n == 0 || n > 3 || len(b) < 2+n {
		return 0, false
	}
	l = 0
	for _, x := range b[2 : 2+n] {
		l = l<<8 | int(x)
	}
	return 2 + n + l, true
}
