// SPDX-License-Identifier: Apache-2.0

package evm_test

import (
	"encoding/hex"
	"fmt"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/label"
)

// Computing the security.evm HMAC of a file the way the kernel does, from
// what was read from it (evm.ReadInput reads it from an open file).
func Example() {
	ima, _ := hex.DecodeString("0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447")
	uuid, _ := evm.ParseUUID("8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6")
	in := evm.Input{
		Xattrs: map[string][]byte{evm.XattrIMA: ima},
		Misc:   evm.Misc{Ino: 9986085, Generation: 3536706591, UID: 0, GID: 0, Mode: 0o100644},
		UUID:   uuid,
	}
	msg, err := evm.Config{}.Message(label.TypeHMAC, in, evm.Layout64)
	if err != nil {
		panic(err)
	}
	key, _ := hex.DecodeString("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
	v, err := evm.NewHMAC(key, msg)
	if err != nil {
		panic(err)
	}
	fmt.Printf("security.evm = %x\n", v.Marshal())
	// Output: security.evm = 0298bb437e5528296580bafbde7f879a49a067cee1
}
