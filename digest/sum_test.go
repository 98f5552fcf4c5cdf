// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestFileSums: one read gives each algorithm's digest, the same as File
// gives; an algorithm without an implementation is ErrUnsupported.
func TestFileSums(t *testing.T) {
	content := strings.Repeat("intact ", 100000) // more than one buffer
	algos := []Algo{SHA512, SHA256, SHA1}
	sums, err := FileSums(strings.NewReader(content), algos...)
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(algos) {
		t.Fatalf("%d sums for %d algorithms", len(sums), len(algos))
	}
	for i, a := range algos {
		want, err := File(strings.NewReader(content), a)
		if err != nil {
			t.Fatal(err)
		}
		if sums[i].Algo != a || !bytes.Equal(sums[i].Bytes, want) {
			t.Errorf("sum %d = %s %x, want %s %x", i, sums[i].Algo, sums[i].Bytes, a, want)
		}
		if !bytes.Equal(Find(sums, a), want) {
			t.Errorf("Find(%s) = %x", a, Find(sums, a))
		}
	}
	if Find(sums, SHA384) != nil {
		t.Error("Find of an algorithm not computed")
	}
	if _, err := FileSums(strings.NewReader(content), SHA256, SM3); !errors.Is(err, ErrUnsupported) {
		t.Errorf("sm3: %v, want ErrUnsupported", err)
	}
}
