// SPDX-License-Identifier: Apache-2.0

package appraise

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openNoFollow opens path for reading without following a final symlink,
// without blocking on FIFOs or devices, and without updating atime where
// the caller may ask for that.
func openNoFollow(path string) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := unix.Open(path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
