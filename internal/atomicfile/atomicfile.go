// SPDX-License-Identifier: Apache-2.0

// Package atomicfile writes files so that readers see either the old
// content or the whole new content, never a part: keys, sealed blobs,
// state and policies go through it.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file beside path, syncs it, and
// renames it over path. With exclusive set it refuses (os.ErrExist) to
// replace an existing file, checked at the final step with a hard link so
// that a file created meanwhile is not overwritten either.
func WriteFile(path string, data []byte, perm os.FileMode, exclusive bool) error {
	if exclusive {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, os.ErrExist)
		}
	}
	return replace(path, perm, exclusive, writeData(data))
}

// WriteWith streams a file: write is given a buffered writer on a
// temporary file beside path; if it returns nil the file is synced and
// renamed over path, otherwise it is removed and path is left as it was.
// Large outputs (manifests) go through it without being held in memory.
func WriteWith(path string, perm os.FileMode, write func(io.Writer) error) error {
	return replace(path, perm, false, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 256<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

func writeData(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// replace writes a temporary file beside path (fill) and puts it at path:
// renamed over it, or with exclusive hard-linked (link(2) fails if path
// exists: no window in which another file at path is replaced). The
// directory is synced after. On failure the temporary file is removed
// and path is left as it was.
func replace(path string, perm os.FileMode, exclusive bool, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f, perm, write); err != nil {
		return err
	}
	if exclusive {
		if err = os.Link(tmp, path); err != nil {
			if os.IsExist(err) {
				return fmt.Errorf("%s: %w", path, os.ErrExist)
			}
			return err
		}
		os.Remove(tmp)
	} else if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// fill gives the new temporary file f its mode and content (write), syncs
// it and closes it. The caller removes it if fill fails.
func fill(f *os.File, perm os.FileMode, write func(io.Writer) error) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}
