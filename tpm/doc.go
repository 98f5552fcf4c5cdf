// SPDX-License-Identifier: Apache-2.0

// Package tpm is intact's access to a TPM 2.0: PCRs, secrets sealed to
// the platform state, and signing keys that never leave the TPM. It is
// built on go-tpm's tpm2 API.
//
// # Opening a TPM
//
// Every command and daemon names its TPM with one spec string, passed to
// [Open]: "" or "default" ([DeviceRM], then [DeviceRaw]), a device path,
// "swtpm:HOST:PORT" (the TPM command protocol over TCP, framed by this
// package: a response is read as its 10-byte header and then exactly the
// size the header gives), or "sim", the embedded simulator of package
// tpm/sim for tests and demonstrations (only through an [Opener] that has
// one: release builds refuse it with [ErrNoSimulator]). Missing, busy and locked-out TPMs give
// errors wrapping [ErrNotPresent], [ErrBusy] and [ErrLockout]; TPM_RC_RETRY,
// TPM_RC_YIELDED and TPM_RC_TESTING are retried a few times first.
//
// # PCRs
//
// [TPM.Banks] lists the allocated banks, [TPM.ReadPCRs] and
// [TPM.ReadAllPCRs] read them, [TPM.ExtendPCR] extends one PCR in every
// allocated bank with a digest per bank (refusing a missing or extra bank,
// so that banks never diverge).
//
// # Sealing
//
// [TPM.Seal] binds a secret (the 32-byte EVM key) to the sha256 values of
// chosen PCRs, and optionally to a passphrase: PolicyPCR [+
// PolicyAuthValue]. The result, a [SealedKey], is bytes
// ([SealedKey.MarshalBinary]) that only this TPM can load. [TPM.Unseal]
// fails with a [*PCRMismatchError] naming the PCRs that changed;
// [TPM.Reseal] moves a secret to the values a planned update will
// produce. Secrets cross the bus only in salted, encrypted sessions.
//
// # Signing keys
//
// [TPM.CreateKey] makes an ECC P-256 or RSA-2048 signing key under the
// storage root key; the [KeyBlob] (an "INTACT TPM KEY" PEM file) holds it
// wrapped by the TPM. [TPM.LoadKey] returns a [*Key], a [crypto.Signer]
// over precomputed digests: what IMA labels, package sig and
// x509.CreateCertificate need.
//
// # Storage root key
//
// Nothing is persisted in the TPM: the SRK is re-created from the standard
// ECC P-256 template for each operation (see srk.go for why). Blobs stay
// valid until the TPM is cleared. The owner hierarchy's authorization must
// be empty.
package tpm
