// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/walk"
)

const signUsage = `
Usage: intact sign --key KEY.pem [-a ALGO] [-r] [-n] [--sigfile] [--xattr-user]
                   [--evm portable|full|none [--uuid UUID|none] [--smack]] PATH...

Signs each file's digest and writes the signature label (type 0x03,
version 2) to security.ima, as evmctl ima_sign: RSA PKCS#1 v1.5 or ECDSA
(DER). The keyid is taken from the last four bytes of a certificate's
SubjectKeyIdentifier: --keyid-from-cert's, or (as evmctl) one in the key
file itself; else it is computed from the key.

With --evm portable or full it also signs the file's metadata into
security.evm, as evmctl sign --imasig: a portable signature (type 0x05)
covers the protected xattrs (security.ima included), owner, group and mode;
a full one (type 0x03) also the inode number, generation and file-system
UUID, so it binds the file to this inode (docs/evm.md).

A TPM key made by "intact keygen --tpm" signs in the TPM: --key KEY.tpm
[--tpm SPEC] (default: the default TPM; docs/tpm.md).
`

func cmdSign(e *env, args []string) error {
	f := newFlags(e, "sign", signUsage)
	var tf treeFlags
	tf.register(f)
	keyPath := f.String("key", "", "private key (PEM), or a TPM key (intact keygen --tpm)")
	tpmSpec := f.String("tpm", "", "the TPM that holds --key (`SPEC`: default, /dev/tpmrm0, swtpm:HOST:PORT, sim)")
	algoName := f.String("a", "sha256", "hash algorithm: sha256, sha384, sha512, sha1")
	printOnly := f.Bool("n", false, "print the labels (hex) instead of writing them")
	sigfile := f.Bool("sigfile", false, "also write the label to PATH.sig (a detached signature)")
	keyIDHex := f.String("keyid", "", "use this keyid (8 hex digits) instead of the key's")
	keyIDCert := f.String("keyid-from-cert", "", "take the keyid from this certificate's SubjectKeyIdentifier")
	var ef evmSignFlags
	ef.register(f)
	paths, err := f.parse(args)
	if err != nil {
		return err
	}
	if *keyPath == "" {
		return usageErrorf("sign", "--key is required")
	}
	algo, err := fileHashAlgo("sign", *algoName)
	if err != nil {
		return err
	}
	evmSig, err := ef.signer(*printOnly, tf.xattrUser)
	if err != nil {
		return err
	}
	if err := checkPaths("sign", paths, &tf); err != nil {
		return err
	}
	signer, done, err := loadAnySigner(e, "sign", *keyPath, *tpmSpec)
	if err != nil {
		return err
	}
	defer done()
	keyID, err := signingKeyID(signer, *keyPath, *keyIDHex, *keyIDCert)
	if err != nil {
		return err
	}
	if evmSig != nil {
		evmSig.signer, evmSig.keyID, evmSig.algo = signer, keyID, algo
	}
	return labelFiles(e, paths, &tf, *printOnly, xattr.IMA(tf.xattrUser), func(en walk.Entry) ([]byte, error) {
		if *sigfile && isSigFile(en.Name) {
			return nil, nil // a detached signature from an earlier run
		}
		sum, err := digest.File(en.File, algo)
		if err != nil {
			return nil, err
		}
		s, err := sig.SignDigest(signer, keyID, algo, sum)
		if err != nil {
			return nil, err
		}
		v := s.Marshal()
		if evmSig != nil {
			if err := evmSig.sign(en.File, v); err != nil {
				return nil, err
			}
		}
		if *sigfile && !*printOnly {
			// Beside the file, through its directory's descriptor.
			if err := en.Dir.WriteFile(en.Name+".sig", v, 0o644); err != nil {
				return nil, err
			}
		}
		return v, nil
	})
}

// loadSigner loads the signing key named by --key.
func loadSigner(path string) (crypto.Signer, error) {
	k, err := sig.LoadPrivateKey(path)
	if err != nil {
		return nil, fileError("key", path, err)
	}
	return k, nil
}

// signingKeyID is the keyid a signature carries: --keyid, or the
// SubjectKeyIdentifier of --keyid-from-cert, or of a certificate in the key
// file itself (as evmctl ima_sign), or else the key's own keyid.
func signingKeyID(signer crypto.Signer, keyPath, keyIDHex, certPath string) (uint32, error) {
	switch {
	case keyIDHex != "" && certPath != "":
		return 0, usageErrorf("sign", "--keyid and --keyid-from-cert exclude each other")
	case keyIDHex != "":
		b, err := hex.DecodeString(keyIDHex)
		if err != nil || len(b) != 4 || binary.BigEndian.Uint32(b) == 0 {
			return 0, usageErrorf("sign", "--keyid %q: want 8 hex digits, not all zero", keyIDHex)
		}
		return binary.BigEndian.Uint32(b), nil
	case certPath != "":
		certs, err := sig.LoadCertificates(certPath)
		if err != nil {
			return 0, err
		}
		ski := certs[0].SubjectKeyId
		if len(ski) < 4 {
			return 0, fmt.Errorf("%s: certificate has no SubjectKeyIdentifier", certPath)
		}
		return binary.BigEndian.Uint32(ski[len(ski)-4:]), nil
	}
	data, err := readfile.Read(keyPath, readfile.Key)
	if err != nil {
		return 0, fmt.Errorf("key %s: %w", keyPath, unwrapPathError(err))
	}
	if id, ok, err := sig.BundledKeyID(data, signer.Public()); err != nil {
		return 0, fmt.Errorf("key %s: %w", keyPath, err)
	} else if ok {
		return id, nil
	}
	return sig.KeyID(signer.Public())
}
