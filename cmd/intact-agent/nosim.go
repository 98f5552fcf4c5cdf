// SPDX-License-Identifier: Apache-2.0

//go:build !intact_sim

package main

import "github.com/intactsec/intact/tpm"

// tpmOpener opens --tpm specs. A release build has no simulator: --tpm
// sim is refused (errNoSimulator; sim.go, built with -tags intact_sim,
// has one).
func tpmOpener() tpm.Opener { return tpm.Opener{} }
