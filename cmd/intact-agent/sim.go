// SPDX-License-Identifier: Apache-2.0

//go:build intact_sim

package main

import (
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

// tpmOpener opens --tpm specs, "sim" included: this build has the
// embedded simulator (-tags intact_sim, for tests and demonstrations).
func tpmOpener() tpm.Opener { return sim.Opener() }
