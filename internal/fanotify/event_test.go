// SPDX-License-Identifier: Apache-2.0

package fanotify

import (
	"encoding/binary"
	"errors"
	"testing"
)

func meta(mask uint64, fd, pid int32, info []byte) []byte {
	b := make([]byte, 24+len(info))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	b[4] = 3
	binary.NativeEndian.PutUint16(b[6:], 24)
	binary.NativeEndian.PutUint64(b[8:], mask)
	binary.NativeEndian.PutUint32(b[16:], uint32(fd))
	binary.NativeEndian.PutUint32(b[20:], uint32(pid))
	copy(b[24:], info)
	return b
}

func fidInfo(handle []byte) []byte {
	b := make([]byte, 4+16+len(handle))
	b[0] = infoTypeFID
	binary.NativeEndian.PutUint16(b[2:], uint16(len(b)))
	binary.NativeEndian.PutUint32(b[4:], 7)
	binary.NativeEndian.PutUint32(b[8:], 9)
	binary.NativeEndian.PutUint32(b[12:], uint32(len(handle)))
	binary.NativeEndian.PutUint32(b[16:], 1)
	copy(b[20:], handle)
	return b
}

func TestDecode(t *testing.T) {
	b := append(meta(OpenPerm, 5, 100, nil), meta(Attrib, NoFD, 7, fidInfo([]byte{1, 2, 3, 4}))...)
	evs, err := Decode(b)
	if err != nil || len(evs) != 2 {
		t.Fatalf("Decode = %v, %v", evs, err)
	}
	if evs[0].Mask != OpenPerm || evs[0].Fd != 5 || evs[0].Pid != 100 {
		t.Errorf("event 0 = %+v", evs[0])
	}
	e := evs[1]
	if e.Fd != NoFD || e.FSID != [2]int32{7, 9} || e.HandleType != 1 || string(e.Handle) != "\x01\x02\x03\x04" {
		t.Errorf("event 1 = %+v", e)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := append(meta(OpenPerm, 5, 100, nil), meta(Attrib, NoFD, 7, fidInfo([]byte{1, 2}))...)
	// Every truncation is rejected, with the events before it returned.
	for i := 1; i < len(good); i++ {
		if i == 24 {
			continue // exactly one event
		}
		evs, err := Decode(good[:i])
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("Decode(first %d bytes) error = %v", i, err)
		}
		if i > 24 && (len(evs) < 1 || evs[0].Fd != 5) {
			t.Fatalf("Decode(first %d bytes) lost the complete first event: %v", i, evs)
		}
	}
	bad := meta(OpenPerm, 5, 1, nil)
	bad[4] = 2
	if _, err := Decode(bad); !errors.Is(err, ErrDecode) {
		t.Errorf("version 2 accepted")
	}
	if r := encodeResponse(-1, 1); binary.NativeEndian.Uint32(r[0:]) != 0xffffffff || r[4] != 1 {
		t.Errorf("encodeResponse = %x", r)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(append(meta(OpenPerm, 5, 100, nil), meta(Attrib, NoFD, 7, fidInfo([]byte{1, 2, 3}))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _ := Decode(b)
		for _, e := range evs {
			if len(e.Handle) > len(b) {
				t.Fatal("handle longer than input")
			}
		}
	})
}
