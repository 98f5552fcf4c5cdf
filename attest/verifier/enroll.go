// SPDX-License-Identifier: Apache-2.0

package verifier

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/rtpolicy"
)

// Enrollment checks, each its own function: what an agent reports at
// enrollment must be acceptable before (and, for the duplicate check,
// again just before) it is stored.

// checkLogPCR refuses a measurement list on a PCR other than the one
// the agent's runtime policy names for its source (rtpolicy.LogPCR:
// PCR 10 for the kernel's list, 13 for intact's own, unless the policy
// says otherwise), and always one outside PCRs 8-15: a resettable PCR
// (16, 20-23) can be reset with a fresh list to erase what was
// measured, the firmware's (0-7) are not the list's. The agent does not
// choose its PCR. Also checked at every attestation (the policy may
// change).
func checkLogPCR(pol *rtpolicy.Compiled, source string, pcr int) error {
	want, ok := pol.LogPCR(source)
	switch {
	case !ok:
		return secErr(ReasonLogPCR, "unknown measurement list source %q", source)
	case !rtpolicy.AllowedLogPCR(pcr):
		return secErr(ReasonLogPCR, "the %s list extends pcr %d, which is never accepted (firmware pcrs 0-7 and resettable pcrs 16-23 are refused; the policy wants pcr %d)", source, pcr, want)
	case pcr != want:
		return secErr(ReasonLogPCR, "the %s list extends pcr %d; the runtime policy accepts it only on pcr %d", source, pcr, want)
	}
	return nil
}

// ekKey is the hex SHA-256 of the EK's public key (PKIX DER): what
// identifies a TPM whatever the encoding of its public area (the
// activation depends on the key, not on the rest of the area).
func ekKey(ekPublic []byte) (string, error) {
	pub, err := ekPublicKey(ekPublic)
	if err != nil {
		return "", secErr(ReasonEnrollment, "ek: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", secErr(ReasonEnrollment, "ek: %v", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// checkDuplicateTPM refuses an agent whose TPM (its EK key or public
// area, or its AK) is already enrolled under another id: a relay
// ("cuckoo") in front of an enrolled agent, or the same machine twice.
// The TPM would vouch for two agents with one set of evidence. To move
// a machine to a new id, remove the old one first.
func (v *Verifier) checkDuplicateTPM(ctx context.Context, id, key string, e *attest.Enrollment) error {
	ids, err := v.o.Store.FindAgentsByKey(ctx, key, e.EKPublic, e.AKPublic)
	if err != nil {
		return fmt.Errorf("looking up the agents of this tpm: %w", err)
	}
	ids = slices.DeleteFunc(ids, func(x string) bool { return x == id }) // the same id: ErrExists
	if len(ids) == 0 {
		return nil
	}
	return secErr(ReasonDuplicateTPM, "agent %q: its tpm (ek or ak) is already enrolled as %s: a relay to that agent, or the same machine twice (remove it first to enroll the machine under a new id)",
		id, quoteIDs(ids))
}

func quoteIDs(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ", ")
}
