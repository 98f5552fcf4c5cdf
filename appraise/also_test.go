// SPDX-License-Identifier: Apache-2.0

package appraise

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"os"
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
)

// TestFileAlso: FileAlso hands back the label it judged and the digests
// it computed — the label's algorithm first, then each one asked for, once
// — from one read of the content (the bytes the process reads, as the
// kernel counts them); an appraisal that fails before reading the
// content digests nothing.
func TestFileAlso(t *testing.T) {
	const size = 4 << 20
	content := make([]byte, size)
	rand.Read(content)
	s512, s256 := sha512.Sum512(content), sha256.Sum256(content)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	value := label.DigestLabel(digest.SHA512, s512[:])
	if err := xattr.Set(path, xattr.IMA(true), value); err != nil {
		t.Fatalf("user xattrs: %v", err)
	}
	a := New(Options{XattrUser: true})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, err := testenv.BytesRead()
	if err != nil {
		t.Fatal(err)
	}
	r := a.FileAlso(f, path, digest.SHA256, digest.SHA512)
	after, _ := testenv.BytesRead()
	if !r.OK() {
		t.Fatalf("verdict %s: %s", r.Verdict, r.Reason)
	}
	if n := after - before; n < size || n >= 2*size {
		t.Errorf("read %d bytes of a %d-byte file, want it read once", n, size)
	}
	if !bytes.Equal(r.Value, value) {
		t.Errorf("Value = %x, want the label %x", r.Value, value)
	}
	if len(r.Digests) != 2 || r.Digests[0].Algo != digest.SHA512 || !bytes.Equal(r.Digests[0].Bytes, s512[:]) ||
		r.Digests[1].Algo != digest.SHA256 || !bytes.Equal(r.Digest(digest.SHA256), s256[:]) {
		t.Errorf("Digests = %+v, want sha512 then sha256 of the content", r.Digests)
	}
	// File digests with the label's algorithm only.
	if r := a.File(f, path); !r.OK() || len(r.Digests) != 1 || r.Digest(digest.SHA256) != nil {
		t.Errorf("File: %s, digests %+v", r.Verdict, r.Digests)
	}
	// No label: nothing read, nothing digested.
	if err := xattr.Remove(path, xattr.IMA(true)); err != nil {
		t.Fatal(err)
	}
	if r := a.FileAlso(f, path, digest.SHA256); r.Verdict != NoLabel || r.Digests != nil || r.Value != nil {
		t.Errorf("no label: %s, digests %+v, value %x", r.Verdict, r.Digests, r.Value)
	}
}
