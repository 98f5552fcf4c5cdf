// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// MaxSecretSize is the largest secret [TPM.Seal] seals
// (TPM2B_SENSITIVE_DATA).
const MaxSecretSize = 128

// sealBank is the PCR bank sealed keys are bound to.
const sealBank = crypto.SHA256

// SealOptions say what a secret is sealed to.
type SealOptions struct {
	// PCRs to bind to (sha256 bank); required.
	PCRs []int
	// Values are the sha256 PCR values unsealing will require, one per
	// PCR in PCRs — the values after a planned kernel or firmware update.
	// Nil means the PCRs' current values.
	Values map[int][]byte
	// Passphrase, if not empty, is required for unsealing as well
	// (PolicyAuthValue). Wrong guesses count towards the TPM's
	// dictionary-attack lockout.
	Passphrase []byte
}

// Seal seals secret (at most [MaxSecretSize] bytes) under the storage root
// key with the policy PolicyPCR(opts.PCRs, sha256 bank, their values)
// [+ PolicyAuthValue]. The secret is sent to the TPM in an encrypted
// session. The result can be unsealed only by this TPM (until it is
// cleared), only while the PCRs hold those values.
func (t *TPM) Seal(secret []byte, opts SealOptions) (*SealedKey, error) {
	const op = "seal"
	if len(secret) == 0 || len(secret) > MaxSecretSize {
		return nil, &Error{Op: op, Err: fmt.Errorf("secret of %d bytes (1-%d)", len(secret), MaxSecretSize)}
	}
	values, err := t.sealValues(opts)
	if err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	k := &SealedKey{PCRs: slices.Sorted(slices.Values(opts.PCRs)), Values: values, Passphrase: len(opts.Passphrase) > 0}
	policy, err := k.policyDigest()
	if err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	tmpl := tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:        true,
			FixedParent:     true,
			AdminWithPolicy: true,
			// Without a passphrase there is nothing to guess; with one,
			// failures count towards lockout.
			NoDA: !k.Passphrase,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
			&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
	}
	err = t.withSRK(op, func(s *srk) error {
		rsp, err := tpm2.Create{
			ParentHandle: s.auth(tpm2.AESEncryption(128, tpm2.EncryptIn)),
			InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
				UserAuth: tpm2.TPM2BAuth{Buffer: authValue(opts.Passphrase)},
				Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
			}},
			InPublic: tpm2.New2B(tmpl),
		}.Execute(t.tr)
		if err != nil {
			return wrap(op, err)
		}
		k.Public = rsp.OutPublic.Bytes()
		k.Private = rsp.OutPrivate.Buffer
		return nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// sealValues checks opts and returns the sha256 values to seal to.
func (t *TPM) sealValues(opts SealOptions) (map[int][]byte, error) {
	if err := checkPCRs(opts.PCRs); err != nil {
		return nil, err
	}
	if opts.Values == nil {
		return t.ReadPCRs(sealBank, opts.PCRs)
	}
	if len(opts.Values) != len(opts.PCRs) {
		return nil, fmt.Errorf("%w: %d pcr values for %d pcrs", ErrBadPCRs, len(opts.Values), len(opts.PCRs))
	}
	values := make(map[int][]byte, len(opts.PCRs))
	for _, p := range opts.PCRs {
		v, ok := opts.Values[p]
		if !ok {
			return nil, fmt.Errorf("%w: no value for pcr %d", ErrBadPCRs, p)
		}
		if len(v) != sealBank.Size() {
			return nil, fmt.Errorf("%w: pcr %d: %d-byte value, want %d (sha256)", ErrBadPCRs, p, len(v), sealBank.Size())
		}
		values[p] = bytes.Clone(v)
	}
	return values, nil
}

// authValue turns a passphrase into the sealed object's authValue. The
// TPM limits an authValue to the name algorithm's digest size, so the
// passphrase is hashed; the empty passphrase is the empty authValue.
func authValue(passphrase []byte) []byte {
	if len(passphrase) == 0 {
		return nil
	}
	h := sha256.Sum256(passphrase)
	return h[:]
}

// policyDigest computes the sealed object's authPolicy:
// PolicyPCR(sha256 selection, digest of the values) [+ PolicyAuthValue].
func (k *SealedKey) policyDigest() ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, p := range k.PCRs {
		h.Write(k.Values[p])
	}
	pcr := tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)}, Pcrs: selection(tpm2.TPMAlgSHA256, k.PCRs)}
	if err := pcr.Update(calc); err != nil {
		return nil, err
	}
	if k.Passphrase {
		if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
			return nil, err
		}
	}
	return calc.Hash().Digest, nil
}

// Unseal returns the sealed secret. If the PCRs no longer hold the sealed
// values the error is a [*PCRMismatchError] naming the PCRs that differ;
// a wrong passphrase gives [ErrWrongPassphrase]; a blob from another TPM
// [ErrForeignKey]. The secret comes back in an encrypted session.
func (t *TPM) Unseal(k *SealedKey, passphrase []byte) ([]byte, error) {
	const op = "unseal"
	if err := k.check(); err != nil {
		return nil, err
	}
	if k.Passphrase && len(passphrase) == 0 {
		return nil, &Error{Op: op, Kind: ErrWrongPassphrase, Err: errors.New("the sealed key needs a passphrase")}
	}
	var secret []byte
	err := t.withSRK(op, func(s *srk) error {
		h, err := t.load(s, k.Public, k.Private)
		if err != nil {
			return loadError(op, err)
		}
		defer tpm2.FlushContext{FlushHandle: h.Handle}.Execute(t.tr)
		policy := func(tp transport.TPM, sess tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
			if _, err := (tpm2.PolicyPCR{PolicySession: sess, Pcrs: selection(tpm2.TPMAlgSHA256, k.PCRs)}).Execute(tp); err != nil {
				return err
			}
			if k.Passphrase {
				_, err := tpm2.PolicyAuthValue{PolicySession: sess}.Execute(tp)
				return err
			}
			return nil
		}
		var auth []byte
		if k.Passphrase {
			auth = authValue(passphrase)
		}
		rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{
			Handle: h.Handle, Name: h.Name,
			Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, policy, tpm2.Auth(auth),
				tpm2.Salted(s.handle.Handle, s.public), tpm2.AESEncryption(128, tpm2.EncryptOut)),
		}}.Execute(t.tr)
		switch {
		case errors.Is(err, tpm2.TPMRCPolicyFail):
			return t.mismatch(k, err)
		case errors.Is(err, tpm2.TPMRCAuthFail), errors.Is(err, tpm2.TPMRCBadAuth):
			return &Error{Op: op, Kind: ErrWrongPassphrase, Err: err}
		case err != nil:
			return wrap(op, err)
		}
		secret = rsp.OutData.Buffer
		return nil
	})
	if err != nil {
		return nil, err
	}
	return secret, nil
}

// loadError classifies a failed TPM2_Load of a blob done for op.
func loadError(op string, err error) error { return loadFailed(op+": load key", err) }

// loadFailed classifies a failed TPM2_Load; op names the load itself.
func loadFailed(op string, err error) error {
	e := wrap(op, err)
	var te *Error
	if errors.As(e, &te) && te.Kind == nil {
		te.Kind = ErrForeignKey
	}
	return e
}

// mismatch explains a policy failure: it reads the sealed PCRs and names
// those that differ from the sealed values.
func (t *TPM) mismatch(k *SealedKey, policyErr error) error {
	cur, err := t.ReadPCRs(sealBank, k.PCRs)
	if err != nil {
		return &Error{Op: "unseal", Kind: ErrPolicy, Err: fmt.Errorf("%v (reading pcrs to compare: %v)", policyErr, err)}
	}
	var diff []int
	for _, p := range k.PCRs {
		if !bytes.Equal(cur[p], k.Values[p]) {
			diff = append(diff, p)
		}
	}
	if len(diff) == 0 {
		return &Error{Op: "unseal", Kind: ErrPolicy,
			Err: errors.New("the pcrs hold the recorded values, yet the tpm refused the policy: the sealed key's recorded values do not match its policy")}
	}
	return &PCRMismatchError{Bank: BankName(sealBank), PCRs: diff}
}

// Reseal unseals k with its passphrase and seals the secret again to
// opts — new expected PCR values for a planned update (opts.Values), or
// the current values, and possibly other PCRs or another passphrase. An
// empty opts.PCRs keeps k's PCR selection. The PCRs must still hold the
// values k was sealed to.
func (t *TPM) Reseal(k *SealedKey, passphrase []byte, opts SealOptions) (*SealedKey, error) {
	secret, err := t.Unseal(k, passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	if len(opts.PCRs) == 0 {
		opts.PCRs = k.PCRs
	}
	return t.Seal(secret, opts)
}
