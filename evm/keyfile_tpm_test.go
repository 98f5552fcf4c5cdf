// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestTPMSealedKeyFile(t *testing.T) {
	blob := []byte("ITSK-opaque-sealed-blob")
	k, err := NewTPMSealedKeyFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b := k.Marshal()
	if want := "intact-evm-key v1\nkind tpm-sealed\nsealed "; !strings.HasPrefix(string(b), want) {
		t.Fatalf("encoding %q", b)
	}
	k2, err := ParseKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Kind != KindTPMSealed || !bytes.Equal(k2.Sealed, blob) {
		t.Fatalf("decoded %+v", k2)
	}
	key, err := k2.OpenSealed(func(got []byte) ([]byte, error) {
		if !bytes.Equal(got, blob) {
			t.Errorf("unseal got %q", got)
		}
		return bytes.Repeat([]byte{1}, KeySize), nil
	})
	if err != nil || len(key) != KeySize {
		t.Fatalf("OpenSealed: %x, %v", key, err)
	}
	if _, err := k2.Open([]byte("pass")); err == nil {
		t.Error("a tpm-sealed key opened with a passphrase")
	}
	unsealErr := errors.New("pcrs changed")
	if _, err := k2.OpenSealed(func([]byte) ([]byte, error) { return nil, unsealErr }); !errors.Is(err, unsealErr) {
		t.Errorf("unseal error not passed on: %v", err)
	}
	if _, err := k2.OpenSealed(func([]byte) ([]byte, error) { return nil, nil }); !errors.Is(err, ErrBadKeyFile) {
		t.Errorf("empty unsealed key: %v", err)
	}
	for name, s := range map[string]string{
		"empty blob":      "intact-evm-key v1\nkind tpm-sealed\nsealed \n",
		"padding":         "intact-evm-key v1\nkind tpm-sealed\nsealed QQ==\n",
		"extra line":      string(b) + "pcrs 7\n",
		"passphrase line": "intact-evm-key v1\nkind tpm-sealed\nkdf argon2id t=1 m=64 p=1\n",
		"bad base64":      "intact-evm-key v1\nkind tpm-sealed\nsealed !!\n",
	} {
		if _, err := ParseKeyFile([]byte(s)); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: err = %v, want ErrBadKeyFile", name, err)
		}
	}
}
