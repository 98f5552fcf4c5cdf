// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/intactsec/intact/label"
)

// FuzzParse: any bytes either fail to parse or parse to a value that
// marshals back to exactly the same bytes.
func FuzzParse(f *testing.F) {
	for _, b := range allValues(f) {
		f.Add(b)
	}
	for _, v := range loadVectors(f) {
		b, _ := hex.DecodeString(v.Expected)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err != nil {
			return
		}
		if got := v.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Parse(%x).Marshal() = %x", b, got)
		}
		if v.Type != label.TypeHMAC && v.Sig == nil {
			t.Fatalf("signature type without signature: %+v", v)
		}
	})
}

// FuzzMessage: message construction never panics on any xattr values,
// misc or uuid, and the HMAC of what it returns can be computed.
func FuzzMessage(f *testing.F) {
	f.Add([]byte("system_u:object_r:bin_t:s0\x00"), []byte{4, 4, 1}, uint64(1), uint32(2), uint16(0o100644), []byte("0123456789abcdef"), byte(2), true)
	f.Fuzz(func(t *testing.T, selinux, ima []byte, ino uint64, gen uint32, mode uint16, uuid []byte, typ byte, l32 bool) {
		in := Input{
			Xattrs: map[string][]byte{XattrSELinux: selinux, XattrIMA: ima},
			Misc:   Misc{Ino: ino, Generation: gen, Mode: mode},
			UUID:   uuid,
		}
		l := Layout64
		if l32 {
			l = Layout32
		}
		msg, err := Config{}.Message(label.Type(typ), in, l)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(msg, append(bytes.Clone(selinux), ima...)) {
			t.Fatalf("message does not start with the xattr values")
		}
		if _, err := HMAC([]byte("k"), msg); err != nil {
			t.Fatal(err)
		}
	})
}
