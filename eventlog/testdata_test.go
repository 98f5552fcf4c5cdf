// SPDX-License-Identifier: Apache-2.0

package eventlog

import (
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func testdataPath(t testing.TB, rel string) string { return testenv.Testdata(t, rel) }

func readTestdata(t testing.TB, rel string) []byte { return testenv.ReadTestdata(t, rel) }
