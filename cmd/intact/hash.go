// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/quote"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/walk"
)

const hashUsage = `
Usage: intact hash [-a ALGO] [-r] [-n] [--xattr-user] PATH...

Writes a digest label to security.ima of each file, byte-identical to
evmctl ima_hash: type 0x04 with the algorithm byte, or type 0x01 for sha1.
A digest label detects changes but proves nothing by itself; use
"intact sign" (or EVM) where an attacker may rewrite labels.
`

func cmdHash(e *env, args []string) error {
	f := newFlags(e, "hash", hashUsage)
	var tf treeFlags
	tf.register(f)
	algoName := f.String("a", "sha256", "hash algorithm: sha256, sha384, sha512, sha1")
	printOnly := f.Bool("n", false, "print the labels (hex) instead of writing them")
	paths, err := f.parse(args)
	if err != nil {
		return err
	}
	algo, err := fileHashAlgo("hash", *algoName)
	if err != nil {
		return err
	}
	if err := checkPaths("hash", paths, &tf); err != nil {
		return err
	}
	return labelFiles(e, paths, &tf, *printOnly, xattr.IMA(tf.xattrUser), func(en walk.Entry) ([]byte, error) {
		sum, err := digest.File(en.File, algo)
		if err != nil {
			return nil, err
		}
		return label.DigestLabel(algo, sum), nil
	})
}

// fileHashAlgo parses -a for commands that write labels.
func fileHashAlgo(cmd, name string) (digest.Algo, error) {
	algo, err := digest.ParseAlgo(name)
	if err != nil {
		return 0, usageErrorf(cmd, "%v", err)
	}
	switch algo {
	case digest.SHA1, digest.SHA224, digest.SHA256, digest.SHA384, digest.SHA512:
		return algo, nil
	}
	return 0, usageErrorf(cmd, "hash algorithm %s is not supported for labels (want sha256, sha384, sha512, sha224 or sha1)", algo)
}

// labelFiles computes a label for every file below paths with make and
// writes it to the xattr name through the descriptor make read (or prints
// it with printOnly); make returns a nil label for a file to skip.
// Per-file errors and skipped files are reported and the walk goes on;
// they make the command fail (exit 2).
func labelFiles(e *env, paths []string, tf *treeFlags, printOnly bool, name string, make func(walk.Entry) ([]byte, error)) error {
	type result struct {
		path  string
		value []byte
		err   error
	}
	failed, skipped := 0, 0
	tooLarge, denied := false, false
	walk.Run(paths, tf.options(), func(en walk.Entry) result {
		if en.Err != nil {
			return result{path: en.Path, err: en.Err}
		}
		v, err := labelOne(en, name, printOnly, make)
		return result{en.Path, v, err}
	}, func(r result) {
		if r.err != nil {
			failed++
			var se *walk.SkipError
			if errors.As(r.err, &se) {
				skipped++
				tooLarge = tooLarge || errors.Is(se, walk.ErrTooLarge)
			}
			denied = denied || errors.Is(r.err, syscall.EPERM)
			errorf(e, "%s: %s", quoteName(r.path), quote.Text(unwrapPathError(r.err).Error()))
			return
		}
		if printOnly && r.value != nil {
			fmt.Fprintf(e.stdout, "%s %s\n", hex.EncodeToString(r.value), quoteName(r.path))
		}
	})
	if failed > 0 {
		err := &exitError{code: 2, err: fmt.Errorf("%d file(s) could not be labelled (%d skipped)", failed, skipped)}
		if tooLarge {
			err.hints = append(err.hints, "--max-size SIZE raises the size limit (default 4G; 0: none)")
		}
		if denied && strings.HasPrefix(name, "security.") && !printOnly {
			err.hints = append(err.hints, "writing "+name+" needs root (CAP_SYS_ADMIN): run as root, or give --xattr-user to write "+strings.Replace(name, "security.", "user.", 1)+" instead")
		}
		return err
	}
	return nil
}

func labelOne(en walk.Entry, name string, printOnly bool, make func(walk.Entry) ([]byte, error)) ([]byte, error) {
	v, err := make(en)
	if err != nil || printOnly || v == nil {
		return v, err
	}
	if err := xattr.FSet(en.File, name, v); err != nil {
		return nil, err
	}
	return v, nil
}
