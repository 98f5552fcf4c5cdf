// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"errors"
	"testing"

	"github.com/intactsec/intact/tpm"
)

// TestLockout: wrong passphrases count towards the TPM's dictionary-attack
// protection; once it locks out, the error says so (ErrLockout), not
// "wrong passphrase", and the right passphrase is refused too.
func TestLockout(t *testing.T) {
	tp := openSim(t)
	k := seal(t, tp, tpm.SealOptions{PCRs: []int{7}, Passphrase: []byte("right")})
	var err error
	tries := 0
	for ; tries < 100; tries++ {
		_, err = tp.Unseal(k, []byte("wrong"))
		if !errors.Is(err, tpm.ErrWrongPassphrase) {
			break
		}
	}
	if !errors.Is(err, tpm.ErrLockout) {
		t.Fatalf("after %d wrong passphrases: err = %v, want ErrLockout", tries, err)
	}
	t.Logf("locked out after %d wrong passphrases: %v", tries, err)
	if _, err := tp.Unseal(k, []byte("right")); !errors.Is(err, tpm.ErrLockout) {
		t.Fatalf("right passphrase in lockout: err = %v, want ErrLockout", err)
	}
}
