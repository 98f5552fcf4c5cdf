// SPDX-License-Identifier: Apache-2.0

package appraise

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/sig"
)

// BenchmarkPath appraises the files of $INTACT_BENCH_TREE (labelled with
// signatures by the certificate in $INTACT_BENCH_CERT); skipped unless set.
func BenchmarkPath(b *testing.B) {
	tree, certPath := os.Getenv("INTACT_BENCH_TREE"), os.Getenv("INTACT_BENCH_CERT")
	if tree == "" || certPath == "" {
		b.Skip("set INTACT_BENCH_TREE and INTACT_BENCH_CERT")
	}
	certs, err := sig.LoadCertificates(certPath)
	if err != nil {
		b.Fatal(err)
	}
	var files []string
	var size int64
	filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
			size += fi.Size()
		}
		return nil
	})
	a := New(Options{Keys: sig.NewKeyring(certs...)})
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			if r := a.Path(f); !r.OK() {
				b.Fatalf("%s: %s", f, r.Verdict)
			}
		}
	}
}
