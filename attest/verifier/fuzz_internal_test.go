// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"bytes"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// FuzzEKPublic: the EK public area an agent sends goes through
// unmarshalPublic and MakeCredential without panicking.
func FuzzEKPublic(f *testing.F) {
	f.Add(tpm2.Marshal(tpm2.ECCEKTemplate))
	f.Add(tpm2.Marshal(tpm2.RSAEKTemplate))
	f.Fuzz(func(t *testing.T, b []byte) {
		makeCredential(bytes.NewReader(make([]byte, 4096)), b, []byte{0, 0x0b, 1, 2}, make([]byte, 32))
		ekPublicKey(b)
	})
}
