// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/xattr"
)

// ioctl numbers (asm-generic encoding: read = 2 << 30).
const (
	// FS_IOC_GETVERSION is _IOR('v', 1, long): its size is the size of
	// long, although file systems store a 32-bit int.
	fsIocGetVersion uint = 2<<30 | (bits.UintSize/8)<<16 | 'v'<<8 | 1
	// FS_IOC_GETFSUUID is _IOR(0x15, 0, struct fsuuid2{u8 len; u8 uuid[16]})
	// (number 0).
	fsIocGetFSUUID uint = 2<<30 | 17<<16 | 0x15<<8
)

// ErrNoGeneration is returned when the file system does not report inode
// generations (FS_IOC_GETVERSION): an HMAC or full signature that the
// kernel checks cannot be computed from user space there.
var ErrNoGeneration = errors.New("file system does not report inode generations")

// ErrNoUUID is returned when the file-system UUID cannot be found.
var ErrNoUUID = errors.New("file-system uuid not found (give it explicitly, e.g. --uuid)")

// ReadMisc returns the h_misc fields of the open file f: ino, uid, gid and
// mode from fstat, and the inode generation from FS_IOC_GETVERSION, as
// the kernel sees them. With noGeneration set (portable signatures) the
// ioctl is not made.
func ReadMisc(f *os.File, noGeneration bool) (Misc, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Misc{}, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	m := Misc{Ino: st.Ino, UID: st.Uid, GID: st.Gid, Mode: uint16(st.Mode)}
	if noGeneration {
		return m, nil
	}
	g, err := unix.IoctlGetUint32(int(f.Fd()), fsIocGetVersion)
	if err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return Misc{}, fmt.Errorf("%s: %w", f.Name(), ErrNoGeneration)
		}
		return Misc{}, &os.PathError{Op: "FS_IOC_GETVERSION", Path: f.Name(), Err: err}
	}
	m.Generation = g
	return m, nil
}

// FSUUID returns the UUID of the file system that holds f, as the kernel's
// s_uuid: first from FS_IOC_GETFSUUID (Linux 6.5+), else by matching the
// file's device with the links in /dev/disk/by-uuid (what blkid, and so
// evmctl, would find).
func FSUUID(f *os.File) ([]byte, error) {
	var buf [17]byte
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(fsIocGetFSUUID), uintptr(unsafe.Pointer(&buf[0])))
	if errno == 0 && buf[0] > 0 && buf[0] <= UUIDSize {
		// EVM hashes the whole 16-byte s_uuid; a shorter id (s_uuid_len)
		// is followed by zeros there.
		u := make([]byte, UUIDSize)
		copy(u, buf[1:1+buf[0]])
		return u, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if u, ok := uuidByDevice(byUUIDDir, st.Dev); ok {
		return u, nil
	}
	return nil, fmt.Errorf("%s: %w", f.Name(), ErrNoUUID)
}

// byUUIDDir holds udev's links from file-system UUIDs to block devices.
const byUUIDDir = "/dev/disk/by-uuid"

// uuidByDevice finds the link in dir whose block device is dev.
func uuidByDevice(dir string, dev uint64) ([]byte, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	for _, e := range ents {
		u, err := ParseUUID(e.Name())
		if err != nil {
			continue // vfat and others have short ids: not a 16-byte s_uuid
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(dir, e.Name()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == dev {
			return u, true
		}
	}
	return nil, false
}

// UUIDSource says where the file-system UUID of an HMAC or full signature
// comes from.
type UUIDSource struct {
	// Value, if set, is used for every file (evmctl --uuid=U).
	Value []byte
	// Omit leaves the UUID out (a kernel without CONFIG_EVM_ATTR_FSUUID;
	// evmctl -u).
	Omit bool
}

// ReadOptions configure ReadInput.
type ReadOptions struct {
	Config Config
	// Portable reads only what a portable signature covers (no
	// generation, no UUID).
	Portable bool
	UUID     UUIDSource
	// XattrUser reads the IMA label from user.ima instead of security.ima
	// (as evmctl --xattr-user); the other protected xattrs stay security.*.
	XattrUser bool
}

// ReadInput reads everything security.evm covers from the open file f.
func ReadInput(f *os.File, o ReadOptions) (Input, error) {
	in := Input{Xattrs: map[string][]byte{}}
	for _, n := range o.Config.Names() {
		name := n
		if n == XattrIMA {
			name = xattr.IMA(o.XattrUser)
		}
		v, err := xattr.FGet(f, name)
		switch {
		case err == nil:
			in.Xattrs[n] = v
		case errors.Is(err, xattr.ErrNotFound) || errors.Is(err, unix.ENOTSUP):
		default:
			return Input{}, err
		}
	}
	var err error
	if in.Misc, err = ReadMisc(f, o.Portable); err != nil {
		return Input{}, err
	}
	switch {
	case o.Portable || o.UUID.Omit:
	case o.UUID.Value != nil:
		in.UUID = o.UUID.Value
	default:
		if in.UUID, err = FSUUID(f); err != nil {
			return Input{}, err
		}
	}
	return in, nil
}
