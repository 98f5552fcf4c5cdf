// SPDX-License-Identifier: Apache-2.0

// Package mlog reads, writes and replays IMA measurement lists: the
// kernel's binary_runtime_measurements and ascii_runtime_measurements
// formats, and the lists that intact itself keeps.
//
// The package is pure: it turns bytes into records and back, computes
// template digests and replays them into simulated PCRs. It opens no TPM;
// the pieces of I/O are [ReadFile] and [Measurer], which takes the TPM as a
// small interface ([TPM]) and owns a list's life for intactd, the
// attestation agent and "intact measure" alike (open or create, the
// boot_aggregate and boot id first, append, extend). See
// docs/measurement.md for the formats and the design.
//
// # Trust
//
// A parsed [List] is unverified: anybody can write a measurement list. Its
// records are reachable only through [List.UnverifiedRecords]. Records
// become trustworthy only through [List.Replay], which replays them against
// PCR values the caller trusts (read from the TPM or taken from a verified
// quote) and returns just the records that the PCRs vouch for.
//
// # Binary format
//
// A list is a sequence of records with no header. Each record is
//
//	u32 pcr
//	template digest             (digest size of the list's bank: 20 for the _sha1 file)
//	u32 template name length
//	template name               (not NUL-terminated)
//	u32 template data length    (absent for template "ima")
//	template data               (for each field: u32 length || field data)
//
// Integers are in the byte order of the kernel that wrote the list (or
// little-endian under ima_canonical_fmt); [Options.BigEndian] selects
// big-endian, the default is little-endian. Template "ima" has no data
// length: its data is the 20-byte SHA-1 file digest, a u32 name length and
// the name without NUL; [Record.Data] holds exactly those bytes.
//
// # Template digests and replay
//
// The template digest of bank H is H(template data) for every template but
// "ima", whose digest is H(digest || name zero-padded to 256 bytes). A
// violation is recorded with an all-zero template digest, and the kernel
// extends the PCR with all 0xff bytes instead. Each record extends its PCR
// in every bank: PCR = H(PCR || template digest).
package mlog
