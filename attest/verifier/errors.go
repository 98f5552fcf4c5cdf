// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"errors"
	"fmt"
)

// Reasons of security failures: evidence that does not verify, or a
// verified measurement that breaks the runtime policy. Each attack class
// has its own.
const (
	ReasonAK              = "ak"                // the enrolled AK is unusable
	ReasonQuoteSignature  = "quote-signature"   // not signed by the enrolled AK
	ReasonQuoteNonce      = "quote-nonce"       // not over the nonce sent (stale, replayed)
	ReasonQuoteMalformed  = "quote-malformed"   // not a TPM-made quote structure
	ReasonQuoteSelection  = "quote-selection"   // PCRs given differ from those quoted
	ReasonPCRDigest       = "quote-pcr-digest"  // PCR values do not match the quoted digest
	ReasonClock           = "quote-clock"       // TPM clock, reset or restart count went back
	ReasonLogOffset       = "log-offset"        // the list does not continue where it stopped
	ReasonLogMalformed    = "log-malformed"     // the list does not parse
	ReasonLogTemplateHash = "log-template-hash" // a record's template digest does not match its data (altered record)
	ReasonLogReplay       = "log-replay"        // the list does not replay to the quoted PCR (record removed, reordered, or PCR extended outside the list)
	ReasonBootAggregate   = "boot-aggregate"    // the list's boot_aggregate does not match the quoted boot PCRs
	ReasonBootLog         = "boot-log"          // the boot event log does not parse or replay to the quoted boot PCRs
	ReasonPolicy          = "policy"            // a verified record breaks the runtime policy
	ReasonEnrollment      = "enrollment"        // the AK is not in the EK's TPM, or the proof is not bound to the pinned certificate
	ReasonDuplicateTPM    = "duplicate-tpm"     // the TPM (EK or AK) is already enrolled under another id (relay, cuckoo)
	ReasonGap             = "gap-after-reboot"  // not a failure: the reason of the gap-after-reboot state (store.StateGap)
	ReasonLogPCR          = "log-pcr"           // the list extends a PCR the policy does not accept (resettable, firmware, or not the policy's)
)

// SecurityError is a failed verification: the evidence is inconsistent
// or a verified measurement breaks the policy. It is distinct from
// operational errors (unreachable agent, TPM busy), which are plain
// errors.
type SecurityError struct {
	Reason string
	Detail string
	// Reboot: the failing quote showed a TPM reset (the failure is in
	// the new boot, such as its boot log), so the timeline has a reboot.
	Reboot bool
}

func (e *SecurityError) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

// ErrSecurity is matched by every *SecurityError (errors.Is).
var ErrSecurity = errors.New("security failure")

func (e *SecurityError) Is(target error) bool { return target == ErrSecurity }

func secErr(reason, format string, args ...any) *SecurityError {
	return &SecurityError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
