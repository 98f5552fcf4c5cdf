// SPDX-License-Identifier: Apache-2.0

// Package fanotify is intact's thin layer over the fanotify(7) syscalls:
// permission groups (FAN_CLASS_CONTENT) whose events block the accessing
// task until answered, FID-mode notification groups for cache
// invalidation, marks and ignore marks, event decoding and responses.
//
// The decoding in this file is pure: [Decode] turns the bytes read from a
// group into events and never panics on malformed input.
package fanotify

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Event masks (the kernel's FAN_* values).
const (
	Access       uint64 = 0x1
	Modify       uint64 = 0x2
	Attrib       uint64 = 0x4
	CloseWrite   uint64 = 0x8
	Open         uint64 = 0x20
	OpenExec     uint64 = 0x1000
	QOverflow    uint64 = 0x4000
	OpenPerm     uint64 = 0x10000
	AccessPerm   uint64 = 0x20000
	OpenExecPerm uint64 = 0x40000
	OnDir        uint64 = 0x40000000

	// PermEvents are the permission events intactd answers.
	PermEvents = OpenPerm | OpenExecPerm
)

const (
	metadataLen     = 24
	metadataVersion = 3
	infoTypeFID     = 1
	// NoFD is the fd of events that carry none (overflow, FID mode).
	NoFD = -1
)

// ErrDecode: the bytes read from a group are not valid events.
var ErrDecode = errors.New("fanotify: malformed event")

// Event is one decoded event.
type Event struct {
	Mask uint64
	// Fd is an fd opened by the kernel for the object (permission and
	// fd-mode events), or NoFD. The caller owns it and must close it
	// after answering.
	Fd int
	// Pid is the accessing process, or its thread with FAN_REPORT_TID
	// (permission groups).
	Pid int32
	// FID mode only: the file system id and the file handle.
	FSID       [2]int32
	HandleType int32
	Handle     []byte
}

// Decode decodes the events in b, as read from a group's fd. Events
// decoded before an error are returned with it, so that their fds can be
// answered and closed.
func Decode(b []byte) ([]Event, error) {
	var evs []Event
	for len(b) > 0 {
		if len(b) < metadataLen {
			return evs, fmt.Errorf("%w: %d trailing bytes", ErrDecode, len(b))
		}
		n := binary.NativeEndian.Uint32(b[0:4])
		if n < metadataLen || uint64(n) > uint64(len(b)) {
			return evs, fmt.Errorf("%w: event length %d of %d bytes", ErrDecode, n, len(b))
		}
		if b[4] != metadataVersion {
			return evs, fmt.Errorf("%w: metadata version %d", ErrDecode, b[4])
		}
		mlen := int(binary.NativeEndian.Uint16(b[6:8]))
		if mlen < metadataLen || mlen > int(n) {
			return evs, fmt.Errorf("%w: metadata length %d", ErrDecode, mlen)
		}
		ev := Event{
			Mask: binary.NativeEndian.Uint64(b[8:16]),
			Fd:   int(int32(binary.NativeEndian.Uint32(b[16:20]))),
			Pid:  int32(binary.NativeEndian.Uint32(b[20:24])),
		}
		if err := decodeInfo(&ev, b[mlen:n]); err != nil {
			return append(evs, ev), err
		}
		evs = append(evs, ev)
		b = b[n:]
	}
	return evs, nil
}

// decodeInfo reads the info records after the metadata; it keeps the FID
// record and skips the others.
func decodeInfo(ev *Event, b []byte) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: short info header", ErrDecode)
		}
		typ, n := b[0], int(binary.NativeEndian.Uint16(b[2:4]))
		if n < 4 || n > len(b) {
			return fmt.Errorf("%w: info record length %d", ErrDecode, n)
		}
		if typ == infoTypeFID {
			if err := decodeFID(ev, b[4:n]); err != nil {
				return err
			}
		}
		b = b[n:]
	}
	return nil
}

// decodeFID reads {fsid [2]int32; handle_bytes u32; handle_type i32;
// f_handle[handle_bytes]}.
func decodeFID(ev *Event, b []byte) error {
	if len(b) < 16 {
		return fmt.Errorf("%w: short fid record", ErrDecode)
	}
	ev.FSID[0] = int32(binary.NativeEndian.Uint32(b[0:4]))
	ev.FSID[1] = int32(binary.NativeEndian.Uint32(b[4:8]))
	hb := binary.NativeEndian.Uint32(b[8:12])
	ev.HandleType = int32(binary.NativeEndian.Uint32(b[12:16]))
	if uint64(hb) > uint64(len(b)-16) {
		return fmt.Errorf("%w: file handle of %d bytes in %d", ErrDecode, hb, len(b)-16)
	}
	ev.Handle = append([]byte(nil), b[16:16+hb]...)
	return nil
}

// encodeResponse is struct fanotify_response {s32 fd; u32 response}.
func encodeResponse(fd int, response uint32) []byte {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:4], uint32(int32(fd)))
	binary.NativeEndian.PutUint32(b[4:8], response)
	return b[:]
}
