// SPDX-License-Identifier: Apache-2.0

// Package readfile reads whole files that must be small — keys,
// certificates, policies, PCR files, tokens — with a bound, so that a path
// naming an endless or huge file (/dev/zero, /dev/urandom, a disk) fails
// at once with an error naming it instead of reading forever and filling
// memory.
package readfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Bounds of the files intact reads whole.
const (
	Key    = 1 << 20  // a PEM or TPM key file, certificates in it included
	Cert   = 4 << 20  // DER or PEM certificates, a bundle included
	Policy = 64 << 20 // an IMA policy, a runtime policy (rtpolicy.MaxSize)
	List   = 1 << 30  // a measurement list or boot event log read whole
	Config = 1 << 20  // a daemon's configuration file
	Small  = 64 << 10 // a token, a passphrase, a signature, a PCR file
)

// ErrTooLarge is wrapped by the error Read returns for a file larger than
// its bound.
var ErrTooLarge = errors.New("file too large")

// ErrDevice is wrapped by the error Read returns for a device (/dev/zero,
// a disk, a terminal): never a key, certificate, policy or list.
var ErrDevice = errors.New("a device, not a file")

// Read returns the contents of path if it holds at most max bytes. A larger
// file (or a pipe that never ends) is an *os.PathError wrapping
// ErrTooLarge, after at most max+1 bytes read; a device is refused unread
// (ErrDevice).
func Read(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tooLarge := &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)}
	if fi, err := f.Stat(); err == nil {
		switch {
		case fi.Mode()&os.ModeDevice != 0:
			return nil, &os.PathError{Op: "read", Path: path, Err: ErrDevice}
		case fi.Mode().IsRegular() && fi.Size() > max:
			return nil, tooLarge
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, tooLarge
	}
	return b, nil
}
