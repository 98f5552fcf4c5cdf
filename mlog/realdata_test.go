// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/intactsec/intact/digest"
)

func TestKeylimeLogs(t *testing.T) {
	for _, tc := range []struct {
		file string
		bank digest.Algo
		algo string
	}{
		{"ima-log-sha1", digest.SHA1, "sha1"},
		{"ima-log-sha256", digest.SHA1, "sha256"},
		{"ima-log-sha384", digest.SHA1, "sha384"},
		{"ima-log-sha512", digest.SHA1, "sha512"},
		{"ima-log-sm3_256", digest.SHA256, "sm3_256"},
		{"ima-log-unknown", digest.SHA256, "unknown"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := testdataPath(t, "keylime/"+tc.file)
			l, err := ReadFile(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Len() != 2 || l.Bank() != tc.bank {
				t.Fatalf("%d records in bank %v, want 2 in %v", l.Len(), l.Bank(), tc.bank)
			}
			r := l.UnverifiedRecords()[1]
			algo, _, ok := r.FileDigest()
			name, _ := r.Name()
			if !ok || algo != tc.algo || name != "/data" {
				t.Errorf("record 1: algo %q name %q, want %q /data", algo, name, tc.algo)
			}
			// The ASCII list round-trips.
			back, err := l.MarshalASCII()
			if err != nil {
				t.Fatal(err)
			}
			if want := readTestdata(t, "keylime/"+tc.file); !bytes.Equal(back, want) {
				t.Errorf("MarshalASCII differs from the file:\n%s", back)
			}
			if _, err := l.Compute(); err != nil {
				t.Errorf("Compute: %v", err)
			}
		})
	}
}

// TestSHA1PaddedReplay: kernels before 5.8 extended the sha256 bank with
// the SHA-1 template digest zero-padded to 32 bytes.
func TestSHA1PaddedReplay(t *testing.T) {
	l, err := ParseBinary(keylimeBinary(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	pcr := make([]byte, 32)
	for _, r := range l.UnverifiedRecords() {
		ext := make([]byte, 32)
		copy(ext, r.Digest)
		if r.Violation() { // keylime's sha1 list starts with one
			copy(ext, bytes.Repeat([]byte{0xff}, 20))
		}
		sum := sha256.Sum256(append(pcr, ext...))
		pcr = sum[:]
	}
	vals, err := l.ComputeWith(ReplayOptions{SHA1Padded: true}, digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vals[digest.SHA256][10], pcr) {
		t.Fatalf("padded sha256 pcr 10 = %x, want %x", vals[digest.SHA256][10], pcr)
	}
	trusted := digest.PCRs{digest.SHA256: {10: pcr}}
	v, err := l.ReplayWith(trusted, ReplayOptions{SHA1Padded: true})
	if err != nil || len(v.Records) != l.Len() {
		t.Fatalf("ReplayWith(SHA1Padded): %v", err)
	}
	var me *MismatchError
	if _, err := l.Replay(trusted); !errors.As(err, &me) {
		t.Errorf("per-bank Replay against a padded value: %v, want a mismatch", err)
	}
	// A violation extends 20 bytes of 0xff and zeros.
	r := l.UnverifiedRecords()[1]
	r.Digest = make([]byte, 20)
	vl := NewList(Options{})
	vl.Add(r)
	got, _ := vl.ComputeWith(ReplayOptions{SHA1Padded: true}, digest.SHA256)
	ext := append(bytes.Repeat([]byte{0xff}, 20), make([]byte, 12)...)
	want := sha256.Sum256(append(make([]byte, 32), ext...))
	if !bytes.Equal(got[digest.SHA256][10], want[:]) {
		t.Errorf("padded violation: %x, want %x", got[digest.SHA256][10], want)
	}
}
