// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Data outside the repository: a path into ../shared or an absolute path
// under a home or work directory, or the Shared finder.
var outside = regexp.MustCompile(`"[^"\n]*shared/testdata|"/(work|home|root)/|\b(testenv\.)?(Read)?Shared\(`)

var testFunc = regexp.MustCompile(`(?m)^func (Test\w*)\(`)

// TestFreshCloneReadsOnlyTheRepository keeps a fresh clone's tests inside
// the clone: a test file that reads ../shared/testdata (or an absolute
// path) must be in the extra run (//go:build shareddata), and every test
// there is named TestShared… so that scripts/test.sh can run just them.
func TestFreshCloneReadsOnlyTheRepository(t *testing.T) {
	root := Root(t)
	tagged := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "internal/testenv/shared.go") || strings.HasSuffix(p, "internal/testenv/shared_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src := string(b)
		rel, _ := filepath.Rel(root, p)
		head, _, _ := strings.Cut(src, "\npackage ")
		isShared := strings.Contains("\n"+head+"\n", "\n//go:build "+SharedTag+"\n")
		if isShared {
			tagged++
			for _, m := range testFunc.FindAllStringSubmatch(src, -1) {
				if !strings.HasPrefix(m[1], "TestShared") {
					t.Errorf("%s: %s is in the shareddata run but not named TestShared…", rel, m[1])
				}
			}
			return nil
		}
		for _, line := range strings.Split(src, "\n") {
			code, _, _ := strings.Cut(line, "//")
			if outside.MatchString(code) {
				t.Errorf("%s reads data outside the repository without the %s build tag: %s", rel, SharedTag, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tagged == 0 {
		t.Error("no file of the shareddata run found: the walk looks in the wrong place")
	}
}
