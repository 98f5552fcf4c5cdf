// SPDX-License-Identifier: Apache-2.0

package eventlog

import (
	"crypto"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/intactsec/intact/digest"
)

// eventTypeNames are the TCG PC Client event types (PFP spec, 10.4.1).
var eventTypeNames = map[uint32]string{
	0x00: "EV_PREBOOT_CERT", 0x01: "EV_POST_CODE", 0x02: "EV_UNUSED", 0x03: "EV_NO_ACTION",
	0x04: "EV_SEPARATOR", 0x05: "EV_ACTION", 0x06: "EV_EVENT_TAG", 0x07: "EV_S_CRTM_CONTENTS",
	0x08: "EV_S_CRTM_VERSION", 0x09: "EV_CPU_MICROCODE", 0x0a: "EV_PLATFORM_CONFIG_FLAGS",
	0x0b: "EV_TABLE_OF_DEVICES", 0x0c: "EV_COMPACT_HASH", 0x0d: "EV_IPL", 0x0e: "EV_IPL_PARTITION_DATA",
	0x0f: "EV_NONHOST_CODE", 0x10: "EV_NONHOST_CONFIG", 0x11: "EV_NONHOST_INFO", 0x12: "EV_OMIT_BOOT_DEVICE_EVENTS",
	0x80000001: "EV_EFI_VARIABLE_DRIVER_CONFIG", 0x80000002: "EV_EFI_VARIABLE_BOOT",
	0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION", 0x80000004: "EV_EFI_BOOT_SERVICES_DRIVER",
	0x80000005: "EV_EFI_RUNTIME_SERVICES_DRIVER", 0x80000006: "EV_EFI_GPT_EVENT", 0x80000007: "EV_EFI_ACTION",
	0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB", 0x80000009: "EV_EFI_HANDOFF_TABLES",
	0x8000000a: "EV_EFI_PLATFORM_FIRMWARE_BLOB2", 0x8000000b: "EV_EFI_HANDOFF_TABLES2",
	0x8000000c: "EV_EFI_VARIABLE_BOOT2", 0x80000010: "EV_EFI_HCRTM_EVENT",
	0x800000e0: "EV_EFI_VARIABLE_AUTHORITY", 0x800000e1: "EV_EFI_SPDM_FIRMWARE_BLOB",
	0x800000e2: "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

// TypeName returns the TCG name of an event type, or its number in hex.
func TypeName(t uint32) string {
	if n, ok := eventTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EV_0x%08x", t)
}

// Component is one boot component or configuration a log records.
type Component struct {
	PCR    int
	Type   string // the TCG event type name (not covered by the digest)
	Digest []byte
	// Description is read from the event data: a file path, a variable
	// name, a command line, a version string.
	Description string
	// DataMeasured reports whether the digest is the hash of the event
	// data itself. When false (a loaded image: the digest covers the
	// image, not the data describing it) the description is not vouched
	// for by any PCR.
	DataMeasured bool
}

// Components lists the events of PCRs 0–9 (firmware, boot loader, kernel)
// other than separators and EV_NO_ACTION, with what their data says.
// events come from Verify (vouched for) or UnverifiedEvents; bank is the
// bank their digests are in.
func Components(events []Event, bank digest.Algo) []Component {
	_, h, ok := attestHashOf(bank)
	var out []Component
	for _, e := range events {
		if e.PCR > 9 || e.Type == evNoAction || e.Type == 0x04 {
			continue
		}
		c := Component{PCR: e.PCR, Type: TypeName(e.Type), Digest: e.Digest, Description: describe(e)}
		if ok {
			c.DataMeasured = digestOf(h, e.Data) == string(e.Digest)
		}
		out = append(out, c)
	}
	return out
}

func digestOf(h crypto.Hash, b []byte) string {
	hh := h.New()
	hh.Write(b)
	return string(hh.Sum(nil))
}

func describe(e Event) string {
	switch e.Type {
	case 0x80000003, 0x80000004, 0x80000005:
		if p := imageLoadPath(e.Data); p != "" {
			return p
		}
	case 0x80000001, 0x80000002, 0x8000000c, 0x800000e0:
		if n := variableName(e.Data); n != "" {
			return n
		}
	case 0x8000000a, 0x8000000b:
		if len(e.Data) > 0 && int(e.Data[0]) < len(e.Data) {
			if s, ok := text(e.Data[1 : 1+int(e.Data[0])]); ok {
				return s
			}
		}
	}
	if s, ok := text(e.Data); ok {
		return s
	}
	if s, ok := utf16Text(e.Data); ok {
		return s
	}
	return fmt.Sprintf("(%d bytes)", len(e.Data))
}

// text returns b as text if it is printable ASCII/UTF-8 (trailing NULs
// dropped).
func text(b []byte) (string, bool) {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return "", false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f || r == 0xfffd {
			return "", false
		}
	}
	return s, true
}

func utf16Text(b []byte) (string, bool) {
	if len(b) < 2 || len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return text([]byte(string(utf16.Decode(u))))
}

// variableName reads the name of a UEFI_VARIABLE_DATA: GUID[16],
// u64 name length (characters), u64 data length, UTF-16 name, data.
func variableName(b []byte) string {
	if len(b) < 32 {
		return ""
	}
	n := binary.LittleEndian.Uint64(b[16:])
	if n == 0 || n > uint64(len(b)-32)/2 {
		return ""
	}
	s, ok := utf16Text(b[32 : 32+2*n])
	if !ok {
		return ""
	}
	return s
}

// imageLoadPath reads the file path nodes of a UEFI_IMAGE_LOAD_EVENT:
// four u64 (location, length, link-time address, device path length),
// then the device path: nodes of type u8, subtype u8, length u16.
func imageLoadPath(b []byte) string {
	if len(b) < 32 {
		return ""
	}
	n := binary.LittleEndian.Uint64(b[24:])
	if n > uint64(len(b)-32) {
		return ""
	}
	dp := b[32 : 32+n]
	var parts []string
	for len(dp) >= 4 {
		typ, sub, l := dp[0], dp[1], int(binary.LittleEndian.Uint16(dp[2:]))
		if l < 4 || l > len(dp) {
			break
		}
		if typ == 0x7f && sub == 0xff { // end of the device path
			break
		}
		if typ == 0x04 && sub == 0x04 { // media: file path
			if s, ok := utf16Text(dp[4:l]); ok {
				parts = append(parts, s)
			}
		}
		dp = dp[l:]
	}
	return strings.Join(parts, "")
}

// TypeByName returns the event type of a TCG name (as TypeName gives it,
// EV_0x… included).
func TypeByName(name string) (uint32, bool) {
	for t, n := range eventTypeNames {
		if n == name {
			return t, true
		}
	}
	if h, ok := strings.CutPrefix(name, "EV_0x"); ok && len(h) == 8 {
		var t uint32
		if _, err := fmt.Sscanf(h, "%08x", &t); err == nil && TypeName(t) == name {
			return t, true
		}
	}
	return 0, false
}

// Variable reads a UEFI_VARIABLE_DATA event's variable name and value
// (EV_EFI_VARIABLE_DRIVER_CONFIG, _BOOT, _BOOT2, _AUTHORITY). ok is
// false when the data is not one.
func Variable(data []byte) (name string, value []byte, ok bool) {
	if len(data) < 32 {
		return "", nil, false
	}
	n := binary.LittleEndian.Uint64(data[16:])
	l := binary.LittleEndian.Uint64(data[24:])
	if n == 0 || n > uint64(len(data)-32)/2 || l > uint64(len(data)-32)-2*n {
		return "", nil, false
	}
	s, ok := utf16Text(data[32 : 32+2*n])
	if !ok {
		return "", nil, false
	}
	return s, data[32+2*n : 32+2*n+l], true
}

// Describe is what an event's data says (a path, a variable name, a
// command line, a version), for display.
func Describe(e Event) string { return describe(e) }

// DataMeasured reports whether an event's digest (of bank) is the hash
// of its data, so that the data is vouched for as much as the digest.
func DataMeasured(e Event, bank digest.Algo) bool {
	_, h, ok := attestHashOf(bank)
	return ok && digestOf(h, e.Data) == string(e.Digest)
}
