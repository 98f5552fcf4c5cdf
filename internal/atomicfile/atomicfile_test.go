// SPDX-License-Identifier: Apache-2.0

package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key.pem")
	if err := WriteFile(p, []byte("one"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o600, true); !errors.Is(err, os.ErrExist) {
		t.Fatalf("exclusive overwrite: err = %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("content after refused overwrite = %q", b)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if err := WriteFile(p, []byte("three"), 0o644, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Fatalf("content after replace = %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

// TestWriteFileAt: the file lands in the directory of the fd even after
// the directory's path is repointed, a symlink at the name is replaced,
// not followed, and no temporary file is left.
func TestWriteFileAt(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "d")
	os.Mkdir(dir, 0o755)
	outside := filepath.Join(base, "outside")
	os.WriteFile(outside, []byte("keep"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "x.sig"))
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.Rename(dir, filepath.Join(base, "moved"))
	os.Mkdir(dir, 0o755)
	if err := WriteFileAt(int(d.Fd()), "x.sig", []byte("sig"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(base, "moved", "x.sig"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("x.sig: %v %v", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("written by path: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(base, "moved")); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
	for _, bad := range []string{"", "a/b", "..", "."} {
		if err := WriteFileAt(int(d.Fd()), bad, nil, 0o644); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

// TestWriteWith: what write streams replaces the file whole; a write that
// fails leaves the old file and no temporary file.
func TestWriteWith(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "manifest")
	big := strings.Repeat("line\n", 100000) // larger than the buffer
	if err := WriteWith(p, 0o640, func(w io.Writer) error {
		_, err := io.WriteString(w, big)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fail := errors.New("signing failed")
	if err := WriteWith(p, 0o640, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return fail
	}); !errors.Is(err, fail) {
		t.Fatalf("failing write: err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != big {
		t.Fatalf("content after a failed write: %d bytes, want the %d written before", len(b), len(big))
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %v, %v; want 0640", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}
