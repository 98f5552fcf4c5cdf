// SPDX-License-Identifier: Apache-2.0

package readfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("12345"), 0o644)
	if b, err := Read(p, 5); err != nil || string(b) != "12345" {
		t.Errorf("Read at the bound: %q, %v", b, err)
	}
	_, err := Read(p, 4)
	var pe *os.PathError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Path != p || !strings.Contains(err.Error(), "more than 4 bytes") {
		t.Errorf("Read over the bound: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 4); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	// A device is refused unread.
	if _, err := Read("/dev/zero", Cert); !errors.Is(err, ErrDevice) || !strings.Contains(err.Error(), "/dev/zero") {
		t.Errorf("/dev/zero: %v", err)
	}
	// An endless pipe: refused after the bound, quickly.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	p = "/proc/self/fd/" + strconv.Itoa(int(r.Fd()))
	if _, err := Read(p, Cert); !errors.Is(err, ErrTooLarge) {
		t.Errorf("an endless pipe: %v", err)
	}
	w.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("an endless pipe took %v", d)
	}
}
