package main

import (
	"encoding/hex"
	"fmt"
	"os"

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
	return writeEVM(e, paths, &tf, *printOnly, func(file *os.File) ([]byte, error) {
		in, err := evm.ReadInput(file, opts)
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

// writeEVM computes security.evm for every file below paths with make and
// writes it (or prints it with printOnly). Per-file errors are reported
// and make the command fail (exit 2).
func writeEVM(e *env, paths []string, tf *treeFlags, printOnly bool, make func(*os.File) ([]byte, error)) error {
	type result struct {
		path  string
		value []byte
		err   error
	}
	name := xattr.EVM(tf.xattrUser)
	failed := 0
	walk.Run(paths, tf.options(), func(en walk.Entry) result {
		if en.Err != nil {
			return result{path: en.Path, err: en.Err}
		}
		v, err := evmOne(en.Path, name, printOnly, make)
		return result{en.Path, v, err}
	}, func(r result) {
		if r.err != nil {
			failed++
			errorf(e, "%s: %v", r.path, unwrapPathError(r.err))
			return
		}
		if printOnly {
			fmt.Fprintf(e.stdout, "%s %s\n", hex.EncodeToString(r.value), r.path)
		}
	})
	if failed > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%d file(s) could not be labelled", failed)}
	}
	return nil
}

func evmOne(path, name string, printOnly bool, make func(*os.File) ([]byte, error)) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := make(f)
	if err != nil || printOnly {
		return v, err
	}
	return v, xattr.FSet(f, name, v)
}
