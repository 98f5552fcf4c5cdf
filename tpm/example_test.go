// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

// Seal a key to PCRs 7 and 16, see unsealing fail once PCR 16 changes.
func ExampleTPM_Seal() {
	t, err := sim.Open() // or tpm.Open(""), tpm.Open("/dev/tpmrm0"), tpm.Open("swtpm:127.0.0.1:2321")
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()

	secret := []byte("0123456789abcdef0123456789abcdef")
	sealed, err := t.Seal(secret, tpm.SealOptions{PCRs: []int{7, 16}})
	if err != nil {
		log.Fatal(err)
	}
	blob, _ := sealed.MarshalBinary() // store it, e.g. in an EVM key file

	var k tpm.SealedKey
	if err := k.UnmarshalBinary(blob); err != nil {
		log.Fatal(err)
	}
	got, err := t.Unseal(&k, nil)
	fmt.Println(string(got) == string(secret), err)

	t.ExtendPCRData(16, []byte("an unexpected kernel"))
	_, err = t.Unseal(&k, nil)
	var pe *tpm.PCRMismatchError
	fmt.Println(errors.As(err, &pe), pe.PCRs)
	fmt.Println(err)
	// Output:
	// true <nil>
	// true [16]
	// tpm: unseal: platform state changed: pcr 16 (sha256) differs from the sealed values
}
