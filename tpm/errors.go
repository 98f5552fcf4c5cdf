// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// Conditions callers branch on. Errors returned by this package wrap at
// most one of them; test with [errors.Is].
var (
	// ErrNotPresent: no TPM at the spec (no device node, nothing
	// listening on the swtpm port).
	ErrNotPresent = errors.New("no tpm")
	// ErrBusy: the TPM is in use by another process (device opened
	// exclusively) or answered TPM_RC_RETRY, TPM_RC_YIELDED or
	// TPM_RC_TESTING after the retries. Trying again later may work.
	ErrBusy = errors.New("tpm busy")
	// ErrLockout: the TPM is in dictionary-attack lockout
	// (TPM_RC_LOCKOUT); authorizations are refused until it recovers.
	ErrLockout = errors.New("tpm in dictionary-attack lockout")
	// ErrBadSpec: the TPM spec string is not one of the accepted forms.
	ErrBadSpec = errors.New("bad tpm spec")
	// ErrNoSimulator: the spec is "sim" and this build has no embedded
	// simulator (see [Opener]).
	ErrNoSimulator = errors.New("this build has no TPM simulator")
	// ErrProtocol: the TPM's response is not a well-formed response.
	ErrProtocol = errors.New("tpm protocol error")
	// ErrWrongPassphrase: the passphrase of a sealed key is wrong. The
	// failure counts towards the TPM's dictionary-attack lockout.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrPolicy: the TPM refused a sealed key's policy. A
	// [*PCRMismatchError] wraps it when PCRs changed.
	ErrPolicy = errors.New("sealed key's policy not satisfied")
	// ErrForeignKey: the TPM refused to load a key blob: it was made by
	// another TPM (or before the TPM was cleared), or it is corrupted.
	ErrForeignKey = errors.New("key blob not loadable by this tpm (other tpm, tpm cleared, or corrupted)")
	// ErrMalformed: a sealed-key or key blob does not parse. A
	// [*FormatError] wraps it.
	ErrMalformed = errors.New("malformed blob")
	// ErrBadPCRs: a PCR list or PCR value set is invalid (index out of
	// range, duplicate, bank not allocated, wrong digest size).
	ErrBadPCRs = errors.New("bad pcr selection")
)

// Error is an operational error from a TPM command. Kind is one of the
// sentinels above (or nil); Err is the underlying cause, often a
// [tpm2.TPMRC].
type Error struct {
	Op   string // what was being done: "unseal", "read pcrs", ...
	Kind error
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tpm: ")
	b.WriteString(e.Op)
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// PCRMismatchError reports that unsealing failed because PCRs differ
// from the values the key was sealed to. It wraps [ErrPolicy].
type PCRMismatchError struct {
	Bank string // "sha256"
	PCRs []int  // the selected PCRs whose current value differs
}

func (e *PCRMismatchError) Error() string {
	s := make([]string, len(e.PCRs))
	for i, p := range e.PCRs {
		s[i] = strconv.Itoa(p)
	}
	noun, verb := "pcr", "differs"
	if len(e.PCRs) > 1 {
		noun, verb = "pcrs", "differ"
	}
	return fmt.Sprintf("tpm: unseal: platform state changed: %s %s (%s) %s from the sealed values",
		noun, strings.Join(s, ", "), e.Bank, verb)
}

func (e *PCRMismatchError) Unwrap() error { return ErrPolicy }

// FormatError reports a blob that does not parse. It wraps [ErrMalformed].
type FormatError struct {
	What   string // "sealed key", "tpm key"
	Reason string
}

func (e *FormatError) Error() string {
	return "tpm: parsing " + e.What + ": " + e.Reason
}

func (e *FormatError) Unwrap() error { return ErrMalformed }

// wrap classifies err from a TPM command done for op.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	var kind error
	switch {
	case errors.Is(err, tpm2.TPMRCRetry), errors.Is(err, tpm2.TPMRCYielded),
		errors.Is(err, tpm2.TPMRCTesting):
		kind = ErrBusy
	case errors.Is(err, tpm2.TPMRCLockout):
		kind = ErrLockout
	}
	return &Error{Op: op, Kind: kind, Err: err}
}
