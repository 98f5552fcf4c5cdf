// SPDX-License-Identifier: Apache-2.0

// Package evm computes and parses security.evm, the extended attribute in
// which Linux EVM protects a file's metadata: the values of the protected
// security.* xattrs (SELinux/Smack/AppArmor labels, security.ima,
// security.capability), the owner, group and mode, and — for the
// non-portable types — the inode number, inode generation and the file
// system's UUID.
//
// # Formats
//
// The byte formats are the kernel's (security/integrity/evm):
//
//	0x02 EVM_XATTR_HMAC            [0x02][HMAC-SHA1, 20 bytes]
//	0x03 EVM_IMA_XATTR_DIGSIG      [0x03][2][hash_algo][keyid BE32][size BE16][sig]
//	0x05 EVM_XATTR_PORTABLE_DIGSIG [0x05][2][hash_algo][keyid BE32][size BE16][sig]
//
// The signature header is [label.Signature]. All three types cover the same
// message, built by [Config.Message]:
//
//	protected xattr values, in the kernel's order, absent ones skipped
//	|| h_misc {ino, generation, uid, gid, mode} (native layout, see [Layout])
//	|| the 16-byte file-system UUID (not for portable signatures)
//
// An HMAC (type 0x02) is HMAC-SHA1 of the message under the EVM key
// zero-padded to 128 bytes ([HMAC]); a signature signs the digest of the
// message with the header's hash algorithm ([Digest]), exactly as an IMA
// signature signs a file digest. Portable signatures put zero in ino and
// generation and leave out the UUID, so they survive copying a file to
// another inode or file system; HMACs and full signatures do not.
//
// # Pure core, thin I/O
//
// Everything except the file *_linux.go files is pure: bytes and structs in,
// bytes and errors out. [Parse] takes attacker-controlled bytes (a disk
// modified off-line) and never panics; the fuzz targets hold it to that.
// [ReadMisc] and [FSUUID] read the inode generation and file-system UUID
// the way the kernel sees them.
//
// # Key files
//
// The HMAC key never rests on disk in clear: [SealPassphrase] wraps it in a
// [KeyFile] (argon2id + XChaCha20-Poly1305) that [KeyFile.Open] unwraps.
// [SealKernelBlob] encrypts it for the kernel's "encrypted" key type under
// a user master key, as `keyctl add encrypted evm-key "load ..."` takes it.
// See docs/evm.md.
package evm
