// SPDX-License-Identifier: Apache-2.0

package main

import (
	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/walk"
)

const hmacUsage = `
Usage: intact hmac --evmkey FILE [--passphrase-env VAR] [-r] [-n] [--uuid UUID|none] [--smack] PATH...

Writes an EVM HMAC (security.evm type 0x02) to each file, as the kernel
computes it: HMAC-SHA1, under the EVM key zero-padded to 128 bytes, of the
protected xattrs (security.selinux, SMACK64, apparmor, ima, capability; with
--smack also SMACK64EXEC, SMACK64TRANSMUTE, SMACK64MMAP), the inode number,
generation, owner, group and mode, and the file system's UUID. Label files
first ("intact sign" or "intact hash"): the HMAC covers security.ima.

The key file is opened with the passphrase from --passphrase-env,
--passphrase-stdin or the terminal; a wrong passphrase writes nothing.
`

func cmdHMAC(e *env, args []string) error {
	f := newFlags(e, "hmac", hmacUsage)
	var tf treeFlags
	tf.register(f)
	keyPath := f.String("evmkey", "", "EVM key `FILE` (intact evmkey create)")
	printOnly := f.Bool("n", false, "print the security.evm values (hex) instead of writing them")
	var pass passFlags
	pass.register(f)
	var meta evmMetaFlags
	meta.register(f)
	paths, err := f.parse(args)
	if err != nil {
		return err
	}
	if *keyPath == "" {
		return usageErrorf("hmac", "--evmkey is required")
	}
	cfg, uuid, layout, err := meta.parse("hmac")
	if err != nil {
		return err
	}
	if err := checkPaths("hmac", paths, &tf); err != nil {
		return err
	}
	key, err := loadEVMKey(e, "hmac", *keyPath, &pass)
	if err != nil {
		return err
	}
	opts := evm.ReadOptions{Config: cfg, UUID: uuid, XattrUser: tf.xattrUser}
	return labelFiles(e, paths, &tf, *printOnly, xattr.EVM(tf.xattrUser), func(en walk.Entry) ([]byte, error) {
		in, err := evm.ReadInput(en.File, opts)
		if err != nil {
			return nil, err
		}
		msg, err := cfg.Message(label.TypeHMAC, in, layout)
		if err != nil {
			return nil, err
		}
		v, err := evm.NewHMAC(key, msg)
		if err != nil {
			return nil, err
		}
		return v.Marshal(), nil
	})
}
