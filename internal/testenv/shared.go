package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Shared returns the path of rel in ../shared/testdata beside the project
// root (the directory that holds go.mod), where CI and every developer
// have the project's read-only real-world test data. Missing data fails
// the test: it is never skipped.
func Shared(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "testdata", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing: %v", err)
	}
	return p
}

// ReadShared returns the contents of rel in the shared test data.
func ReadShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(Shared(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
