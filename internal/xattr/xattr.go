// SPDX-License-Identifier: Apache-2.0

// Package xattr is the thin Linux extended-attribute layer: it reads and
// writes label xattrs on paths (never following symlinks) and on open
// files, and maps "no such attribute" to ErrNotFound.
package xattr

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned when the file has no such attribute.
var ErrNotFound = errors.New("no such attribute")

// Names of the label attributes. With user set, the user.* namespace is
// used instead of security.* (as evmctl --xattr-user), for testing without
// privileges and on file systems or kernels that refuse security.*.
func IMA(user bool) string {
	if user {
		return "user.ima"
	}
	return "security.ima"
}

// EVM returns the name of the EVM attribute (see IMA).
func EVM(user bool) string {
	if user {
		return "user.evm"
	}
	return "security.evm"
}

// The largest value Linux stores in one xattr.
const maxValue = 64 << 10

// Get returns the value of attribute name of path, without following a
// symlink at path.
func Get(path, name string) ([]byte, error) {
	return get(func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) }, path)
}

// FGet returns the value of attribute name of the open file f.
func FGet(f *os.File, name string) ([]byte, error) {
	fd := int(f.Fd())
	return get(func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) }, f.Name())
}

func get(call func([]byte) (int, error), path string) ([]byte, error) {
	buf := make([]byte, 1024)
	for {
		n, err := call(buf)
		switch {
		case err == nil:
			return buf[:n], nil
		case errors.Is(err, unix.ENODATA):
			return nil, ErrNotFound
		case errors.Is(err, unix.ERANGE) && len(buf) < maxValue:
			buf = make([]byte, maxValue)
			continue
		}
		return nil, &os.PathError{Op: "getxattr", Path: path, Err: err}
	}
}

// Set sets attribute name of path (not following a symlink) to value.
func Set(path, name string, value []byte) error {
	if err := unix.Lsetxattr(path, name, value, 0); err != nil {
		return &os.PathError{Op: "setxattr " + name, Path: path, Err: err}
	}
	return nil
}

// Remove removes attribute name of path; a missing attribute is not an error.
func Remove(path, name string) error {
	err := unix.Lremovexattr(path, name)
	if err == nil || errors.Is(err, unix.ENODATA) {
		return nil
	}
	return &os.PathError{Op: "removexattr " + name, Path: path, Err: err}
}

// FSet sets attribute name of the open file f to value.
func FSet(f *os.File, name string, value []byte) error {
	if err := unix.Fsetxattr(int(f.Fd()), name, value, 0); err != nil {
		return &os.PathError{Op: "setxattr " + name, Path: f.Name(), Err: err}
	}
	return nil
}
