// SPDX-License-Identifier: Apache-2.0

package walk

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRunOrderAndFiltering(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b/2", "b/1", "a", "c/d/e"} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a", filepath.Join(dir, "link"))
	os.Symlink("/etc", filepath.Join(dir, "dirlink"))
	var got []string
	Run([]string{dir}, Options{Recursive: true, Jobs: 3}, func(e Entry) string {
		if e.Err != nil {
			return "error:" + e.Path
		}
		rel, _ := filepath.Rel(dir, e.Path)
		return rel
	}, func(s string) { got = append(got, s) })
	want := []string{"a", "b/1", "b/2", "c/d/e"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("walk = %v, want %v", got, want)
	}

	var errs []error
	Run([]string{dir, filepath.Join(dir, "link"), filepath.Join(dir, "missing")}, Options{}, func(e Entry) error { return e.Err },
		func(err error) { errs = append(errs, err) })
	if len(errs) != 3 || !errors.Is(errs[0], ErrDirectory) || errs[1] != nil || !errors.Is(errs[2], os.ErrNotExist) {
		t.Fatalf("non-recursive roots gave %v", errs)
	}
}

// TestRunHandsOutOpenFiles: every entry comes with the open file, its
// fstat, the open directory and its name in it; the directory
// descriptor writes beside the file even after the tree was moved.
func TestRunHandsOutOpenFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("content"), 0o644)
	moved := filepath.Join(t.TempDir(), "moved")
	Run([]string{dir}, Options{Recursive: true}, func(e Entry) error {
		if e.Err != nil {
			t.Fatalf("%s: %v", e.Path, e.Err)
		}
		if e.Name != "f" || e.Path != filepath.Join(dir, "d", "f") || e.Stat.Size != 7 {
			t.Errorf("entry %+v", e)
		}
		if err := os.Rename(dir, moved); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(e.File)
		if string(b) != "content" {
			t.Errorf("read %q", b)
		}
		if err := e.Dir.WriteFile(e.Name+".sig", []byte("sig"), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := e.Dir.ReadFile(e.Name+".sig", 10); err != nil || string(b) != "sig" {
			t.Errorf("ReadFile = %q, %v", b, err)
		}
		return nil
	}, func(error) {})
	if b, err := os.ReadFile(filepath.Join(moved, "d", "f.sig")); err != nil || string(b) != "sig" {
		t.Fatalf("f.sig beside the moved file: %q, %v", b, err)
	}
}

// TestRunSkips: a file over MaxSize (a sparse 5 GiB one: no race needed
// to make a walk hash for minutes) is skipped with ErrTooLarge, a FIFO
// root is refused without blocking, and Dir.ReadFile neither follows a
// symlink nor blocks on a FIFO nor reads more than asked.
func TestRunSkips(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	os.WriteFile(filepath.Join(dir, "small"), []byte("x"), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero"))
	os.WriteFile(filepath.Join(dir, "long"), make([]byte, 100), 0o644)

	var got []string
	Run([]string{dir, fifo, filepath.Join(dir, "zero")}, Options{Recursive: true, MaxSize: DefaultMaxSize}, func(e Entry) string {
		rel, _ := filepath.Rel(dir, e.Path)
		if e.Err != nil {
			return rel + ": " + e.Err.Error()
		}
		return rel
	}, func(s string) { got = append(got, s) })
	want := []string{"big: skipped: larger than the size limit (5.0 GiB > 4.0 GiB)", "long", "small", "fifo: not a regular file", "zero: not a regular file"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("walk = %q, want %q", got, want)
	}

	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	wd := &Dir{f: d, fd: int(d.Fd())}
	for name, want := range map[string]error{"fifo": ErrNotRegular, "zero": unix.ELOOP, "long": ErrTooLarge, "missing": os.ErrNotExist} {
		if _, err := wd.ReadFile(name, 50); !errors.Is(err, want) {
			t.Errorf("ReadFile(%s) = %v, want %v", name, err, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "17": 17, "4G": 4 << 30, "4GiB": 4 << 30, "512k": 512 << 10, "1T": 1 << 40, "10MB": 10 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1", "1.5G", "4X", "99999999999T", "0x10"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}
