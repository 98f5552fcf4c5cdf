// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func testdataPath(t testing.TB, rel string) string { return testenv.Testdata(t, rel) }

func readTestdata(t testing.TB, rel string) []byte { return testenv.ReadTestdata(t, rel) }

// keylimeBinary is Keylime's sample IMA lists with SHA-1 template
// hashes (ima-ng; sha1, sha256, sha384 and sha512 file digests;
// testdata/keylime) one after the other in the kernel's binary format:
// 8 real records every clone has.
func keylimeBinary(t testing.TB) []byte {
	t.Helper()
	var b []byte
	for _, a := range []string{"sha1", "sha256", "sha384", "sha512"} {
		l, err := ParseASCII(readTestdata(t, "keylime/ima-log-"+a), Options{})
		if err != nil {
			t.Fatal(err)
		}
		bin, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, bin...)
	}
	return b
}
