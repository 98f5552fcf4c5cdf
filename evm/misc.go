// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"encoding/binary"
	"math/bits"
)

// Misc is the kernel's struct h_misc: the inode metadata EVM protects.
// UID and GID are the ids in the initial user namespace (the on-disk ids
// of a normal mount); Mode is the full i_mode including the file type.
type Misc struct {
	Ino        uint64
	Generation uint32
	UID        uint32
	GID        uint32
	Mode       uint16
}

// Layout is the in-memory layout of h_misc on the kernel that checks the
// files: the struct is native-endian and its ino is an unsigned long, so a
// label made for one layout does not verify on another (evmctl --m32/--m64).
type Layout struct {
	// Bits is the size of unsigned long: 64 (24-byte h_misc) or 32
	// (20-byte h_misc, ino truncated to 32 bits).
	Bits int
	// Order is the kernel's byte order.
	Order binary.ByteOrder
}

// The common layouts.
var (
	Layout64 = Layout{Bits: 64, Order: binary.LittleEndian} // x86-64, arm64
	Layout32 = Layout{Bits: 32, Order: binary.LittleEndian} // i386, arm
)

// NativeLayout is the layout of the machine this program runs on.
func NativeLayout() Layout {
	return Layout{Bits: bits.UintSize, Order: binary.NativeEndian}
}

// Size returns the size of h_misc in l: 24 bytes for 64-bit, 20 for 32-bit.
func (l Layout) Size() int {
	if l.Bits == 32 {
		return 20
	}
	return 24
}

// Marshal encodes m in layout l, padding included. A zero Layout is
// Layout64.
func (m Misc) Marshal(l Layout) []byte {
	if l.Order == nil {
		l.Order = binary.LittleEndian
	}
	b := make([]byte, l.Size())
	off := 8
	if l.Bits == 32 {
		l.Order.PutUint32(b, uint32(m.Ino))
		off = 4
	} else {
		l.Order.PutUint64(b, m.Ino)
	}
	l.Order.PutUint32(b[off:], m.Generation)
	l.Order.PutUint32(b[off+4:], m.UID)
	l.Order.PutUint32(b[off+8:], m.GID)
	l.Order.PutUint16(b[off+12:], m.Mode)
	return b
}

// Portable returns m as portable signatures see it: ino and generation 0.
func (m Misc) Portable() Misc {
	m.Ino, m.Generation = 0, 0
	return m
}
