// SPDX-License-Identifier: Apache-2.0

package main

import "crypto/sha256"

// What the verifier may link (no TPM transports, no fanotify, no agent,
// no cgo, no device-TPM code kept by the linker) is checked with every
// other binary's rules in internal/deps (TestBinaryDeps,
// TestVerifierHasNoDeviceTPMCode).

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
