package eventlog

import (
	"testing"

	"github.com/intactsec/intact/internal/testenv"
)

func sharedTestdata(t testing.TB, rel string) string { return testenv.Shared(t, rel) }

func readShared(t testing.TB, rel string) []byte { return testenv.ReadShared(t, rel) }
