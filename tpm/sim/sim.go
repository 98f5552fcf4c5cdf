// SPDX-License-Identifier: Apache-2.0

// Package sim is the embedded TPM simulator: go-tpm-tools' build of the
// TCG reference TPM, C code compiled with cgo, seeded with a fixed,
// public seed. It is for tests and demonstrations only: nothing sealed
// to it or held by it is secret.
//
// Tests import it directly. A binary links it only when built with the
// tag tpm.SimBuildTag (intact_sim: `go build -tags intact_sim`, as
// scripts/quickstart.sh does); there the binary's --tpm sim opens it
// through a [tpm.Opener]. Release builds (scripts/install.sh,
// scripts/package.sh) have no simulator and refuse --tpm sim
// (internal/deps checks that none of them links this package).
package sim

import (
	"github.com/google/go-tpm-tools/simulator"

	"github.com/intactsec/intact/tpm"
)

// seed seeds every simulator. A fixed seed makes the simulator's storage
// root key the same in every process, so blobs made by one `intact` run
// load in the next. It also means nothing sealed to the simulator is
// secret.
const seed = 0x696e74616374 // "intact"

// Open starts a simulator: freshly manufactured, PCRs at their reset
// values, the same storage root key in every process. Only one simulator
// can be open in a process at a time; Open waits until the previous one
// is closed. Its spec is [tpm.SimSpec].
func Open() (*tpm.TPM, error) {
	s, err := simulator.GetWithFixedSeedInsecure(seed)
	if err != nil {
		return nil, &tpm.Error{Op: "open simulator", Err: err}
	}
	return tpm.NewStream(tpm.SimSpec, s), nil
}

// Opener opens every spec [tpm.Open] does, and "sim" with [Open].
func Opener() tpm.Opener { return tpm.Opener{Simulator: Open} }
