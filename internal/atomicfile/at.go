// SPDX-License-Identifier: Apache-2.0

package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// WriteFileAt is WriteFile for name inside the directory open as dirfd:
// the temporary file is created there (O_EXCL|O_NOFOLLOW), synced, and
// renamed over name within the same directory, so nothing is resolved by
// path. A symlink at name is replaced, never followed. name must be a
// plain name (no "/").
func WriteFileAt(dirfd int, name string, data []byte, perm os.FileMode) (err error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("atomicfile: %q is not a name in a directory", name)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := "." + name + ".tmp-" + hex.EncodeToString(rnd[:])
	if len(tmp) > 255 {
		tmp = ".intact.tmp-" + hex.EncodeToString(rnd[:])
	}
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	defer func() {
		if err != nil {
			f.Close()
			unix.Unlinkat(dirfd, tmp, 0)
		}
	}()
	if err = fill(f, perm, writeData(data)); err != nil {
		return err
	}
	if err = unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		return &os.PathError{Op: "rename", Path: name, Err: err}
	}
	if serr := unix.Fsync(dirfd); serr != nil && !errors.Is(serr, unix.EINVAL) {
		return serr
	}
	return nil
}
