// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedTag is the build tag of the extra run: test files that read
// ../shared/testdata (data that may not be copied into the repository,
// such as the GPL-2.0 Raspberry Pi measurement lists) carry
// "//go:build shareddata", and every test in them is named TestShared….
// A fresh clone's `go test ./...` never compiles them; scripts/test.sh
// runs them with -tags shareddata when ../shared/testdata is there (and
// fails under CI=true when it is not).
const SharedTag = "shareddata"

// Root returns the project root: the directory above the test's working
// directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// Testdata returns the path of rel in the repository's own testdata/
// folder (see testdata/README.md for each file's source and licence).
// Missing data fails the test: it is part of every clone.
func Testdata(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), "testdata", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test data missing from the repository: %v", err)
	}
	return p
}

// ReadTestdata returns the contents of rel in the repository's testdata/.
func ReadTestdata(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(Testdata(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Shared returns the path of rel in ../shared/testdata beside the project
// root. Only tests of the extra run (files built with the shareddata tag)
// call it; missing data fails the test, it is never skipped.
func Shared(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), "..", "shared", "testdata", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data missing (the -tags %s run needs ../shared/testdata beside the repository): %v", SharedTag, err)
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
