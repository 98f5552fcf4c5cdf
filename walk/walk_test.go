// SPDX-License-Identifier: Apache-2.0

package walk

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
