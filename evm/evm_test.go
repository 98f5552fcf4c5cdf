// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/label"
)

// The h_misc evmctl printed for ino 9978049, generation 4050244652, uid/gid
// 0, mode 0100644 (spec §3.3).
func TestMiscLayouts(t *testing.T) {
	m := Misc{Ino: 9978049, Generation: 4050244652, Mode: 0o100644}
	if got, want := hex.EncodeToString(m.Marshal(Layout64)), "c1409800000000002cd469f10000000000000000a4810000"; got != want {
		t.Errorf("64-bit h_misc = %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(m.Marshal(Layout32)), "c14098002cd469f10000000000000000a4810000"; got != want {
		t.Errorf("32-bit h_misc = %s, want %s", got, want)
	}
	be := Layout{Bits: 64, Order: binary.BigEndian}
	if got, want := hex.EncodeToString(m.Marshal(be)), "00000000009840c1"+"f169d42c"+"00000000"+"00000000"+"81a4"+"0000"; got != want {
		t.Errorf("big-endian h_misc = %s, want %s", got, want)
	}
	if got := (Misc{Ino: 1 << 40}).Marshal(Layout32); !bytes.Equal(got[:4], []byte{0, 0, 0, 0}) {
		t.Errorf("32-bit h_misc does not truncate ino like an unsigned long: %x", got)
	}
	p := Misc{Ino: 7, Generation: 9, UID: 1, GID: 2, Mode: 3}.Portable()
	if p != (Misc{UID: 1, GID: 2, Mode: 3}) {
		t.Errorf("Portable() = %+v", p)
	}
}

func TestMessageOrderAndTypes(t *testing.T) {
	x := map[string][]byte{
		XattrCapability:  []byte("C"),
		XattrIMA:         []byte("I"),
		XattrAppArmor:    []byte("A"),
		XattrSMACK64Exec: []byte("E"),
		XattrSMACK64:     []byte("S"),
		XattrSELinux:     []byte("L"),
		"security.other": []byte("O"),
		"user.ima":       []byte("U"),
	}
	misc := Misc{Ino: 5, Generation: 6, UID: 7, GID: 8, Mode: 0o100755}
	uuid := bytes.Repeat([]byte{0xee}, 16)
	in := Input{Xattrs: x, Misc: misc, UUID: uuid}
	tail := func(m Misc, u []byte) string { return string(m.Marshal(Layout64)) + string(u) }
	for _, tc := range []struct {
		name string
		c    Config
		t    label.Type
		want string
	}{
		{"hmac default", Config{}, label.TypeHMAC, "LSAIC" + tail(misc, uuid)},
		{"full default", Config{}, label.TypeDigsig, "LSAIC" + tail(misc, uuid)},
		{"portable includes disabled entries, no uuid", Config{}, label.TypePortableDigsig, "LSEAIC" + tail(misc.Portable(), nil)},
		{"smack", Config{Smack: true}, label.TypeHMAC, "LSEAIC" + tail(misc, uuid)},
		{"disabled apparmor", Config{Disabled: []string{XattrAppArmor}}, label.TypeHMAC, "LSIC" + tail(misc, uuid)},
		{"extra", Config{Extra: []string{"security.other"}}, label.TypeDigsig, "LSAICO" + tail(misc, uuid)},
	} {
		got, err := tc.c.Message(tc.t, in, Layout64)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s: Message = %q, want %q", tc.name, got, tc.want)
		}
	}
	noUUID := in
	noUUID.UUID = nil
	got, err := Config{}.Message(label.TypeHMAC, noUUID, Layout64)
	if err != nil || string(got) != "LSAIC"+tail(misc, nil) {
		t.Errorf("Message without uuid = %q, %v", got, err)
	}
}

func TestMessageErrors(t *testing.T) {
	in := Input{Xattrs: map[string][]byte{XattrSELinux: []byte("x")}}
	if _, err := (Config{}).Message(label.TypePortableDigsig, in, Layout64); !errors.Is(err, ErrNoIMA) {
		t.Errorf("portable without security.ima: %v, want ErrNoIMA", err)
	}
	if _, err := (Config{}).Message(label.TypeDigestNG, in, Layout64); !errors.Is(err, label.ErrUnsupported) {
		t.Errorf("type 0x04: %v", err)
	}
	in.UUID = []byte{1, 2, 3}
	if _, err := (Config{}).Message(label.TypeHMAC, in, Layout64); err == nil {
		t.Error("3-byte uuid accepted")
	}
	in.UUID = nil
	for _, c := range []Config{
		{Extra: []string{"user.foo"}},
		{Extra: []string{"security."}},
		{Extra: []string{XattrIMA}},
		{Disabled: []string{"security.foo"}},
	} {
		if _, err := c.Message(label.TypeHMAC, in, Layout64); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func TestHMACKeyPadding(t *testing.T) {
	key := []byte("k")
	a, _ := HMAC(key, []byte("m"))
	b, _ := HMAC(append(key, make([]byte, 127)...), []byte("m"))
	if !bytes.Equal(a, b) {
		t.Error("a key and the same key zero-padded to 128 bytes give different hmacs")
	}
	if _, err := HMAC(nil, nil); !errors.Is(err, ErrKeySize) {
		t.Errorf("empty key: %v", err)
	}
	if _, err := HMAC(make([]byte, 129), nil); !errors.Is(err, ErrKeySize) {
		t.Errorf("129-byte key: %v", err)
	}
}

func TestDigest(t *testing.T) {
	d, err := Digest(digest.SHA256, []byte("abc"))
	if err != nil || hex.EncodeToString(d) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Digest(sha256, abc) = %x, %v", d, err)
	}
	if _, err := Digest(digest.SM3, nil); !errors.Is(err, label.ErrUnsupported) {
		t.Errorf("sm3: %v", err)
	}
}

var evmValues = map[string]string{
	"hmac":     "0298bb437e5528296580bafbde7f879a49a067cee1",
	"full":     "030204940038e70004deadbeef",
	"portable": "05020437a91c5b0003aabbcc",
}

// evmctlValues reads testdata/evmctl-evm.txt: real security.evm values.
func evmctlValues(t testing.TB) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/evmctl-evm.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		what, h, ok := strings.Cut(line, " ")
		v, err := hex.DecodeString(h)
		if !ok || err != nil {
			t.Fatalf("testdata line %q", line)
		}
		out["evmctl "+what] = v
	}
	return out
}

func allValues(t testing.TB) map[string][]byte {
	m := evmctlValues(t)
	for name, h := range evmValues {
		m[name], _ = hex.DecodeString(h)
	}
	return m
}

func TestParseEvmctlValues(t *testing.T) {
	want := map[string]label.Type{
		"evmctl sign-portable-ec-p256": label.TypePortableDigsig, "evmctl sign-portable-rsa2048": label.TypePortableDigsig,
		"evmctl sign-full-uuid-rsa2048": label.TypeDigsig, "evmctl sign-full-uuid-ec-p384-sha384": label.TypeDigsig,
		"evmctl hmac-sha1": label.TypeHMAC,
	}
	got := evmctlValues(t)
	if len(got) != len(want) {
		t.Fatalf("%d evmctl values, want %d", len(got), len(want))
	}
	for name, b := range got {
		v, err := Parse(b)
		if err != nil || v.Type != want[name] || !bytes.Equal(v.Marshal(), b) {
			t.Errorf("%s: Parse = %+v, %v", name, v, err)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	for name, h := range evmValues {
		b := unhex(t, h)
		v, err := Parse(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := v.Marshal(); !bytes.Equal(got, b) {
			t.Errorf("%s: Marshal = %x, want %x", name, got, b)
		}
	}
	v, _ := Parse(unhex(t, evmValues["portable"]))
	if !v.Portable() || v.Sig.KeyID != 0x37a91c5b || v.Sig.Algo != digest.SHA256 {
		t.Errorf("portable parsed as %+v", v)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, hex string
		want      error
	}{
		{"empty", "", label.ErrMalformed},
		{"hmac short", "0298bb", label.ErrMalformed},
		{"hmac long", "0298bb437e5528296580bafbde7f879a49a067cee100", label.ErrMalformed},
		{"ima digest type", "0404" + strings.Repeat("00", 32), label.ErrMalformed},
		{"verity type", "060304deadbeef0001aa", label.ErrMalformed},
		{"unknown type", "09aa", label.ErrUnsupported},
		{"sig v1", "0301" + strings.Repeat("00", 20), label.ErrUnsupported},
		{"sig v3", "050304deadbeef0001aa", label.ErrUnsupported},
		{"sig size mismatch", "050204deadbeef0002aa", label.ErrMalformed},
		{"sig truncated header", "050204dead", label.ErrMalformed},
		{"sig unknown algo", "050230deadbeef0001aa", label.ErrUnsupported},
	} {
		if _, err := Parse(unhex(t, tc.hex)); !errors.Is(err, tc.want) {
			t.Errorf("%s: Parse error = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestParseMangling changes every byte of valid values and cuts them at
// every length: each result is rejected or parses to a value that
// marshals back to exactly the input (no silent reinterpretation).
func TestParseMangling(t *testing.T) {
	for name, b := range allValues(t) {
		for i := 0; i < len(b); i++ {
			if v, err := Parse(b[:i]); err == nil {
				t.Errorf("%s: prefix of %d bytes parsed as %+v", name, i, v)
			}
			for _, x := range []byte{0x01, 0x80, 0xff} {
				m := bytes.Clone(b)
				m[i] ^= x
				if v, err := Parse(m); err == nil && !bytes.Equal(v.Marshal(), m) {
					t.Errorf("%s: mangled %x parsed and re-marshalled as %x", name, m, v.Marshal())
				}
			}
		}
		if _, err := Parse(append(bytes.Clone(b), 0)); err == nil {
			t.Errorf("%s: trailing byte accepted", name)
		}
	}
}

func TestUUID(t *testing.T) {
	u, err := ParseUUID("8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6")
	if err != nil || hex.EncodeToString(u) != "8bcbe3944f134144be8e5aa9ea2ce2f6" {
		t.Fatalf("ParseUUID = %x, %v", u, err)
	}
	if s := FormatUUID(u); s != "8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6" {
		t.Errorf("FormatUUID = %s", s)
	}
	for _, bad := range []string{"", "8bcbe3944f134144be8e5aa9ea2ce2f6", "8bcbe394-4f13-4144-be8e-5aa9ea2ce2fg", "8bcbe394-4f13-4144-be8e5-aa9ea2ce2f6"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) accepted", bad)
		}
	}
}
