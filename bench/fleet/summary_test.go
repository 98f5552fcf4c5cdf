// SPDX-License-Identifier: Apache-2.0

package main

import (
	"strings"
	"testing"
	"time"
)

// The summary compares the ramps at the largest N every ramp measured:
// verifier plus database server CPU per attestation, and the ratio to
// SQLite's; and by step.
func TestSummary(t *testing.T) {
	us := time.Microsecond
	done := []*storeResult{
		{run: storeRun{"sqlite", 1}, best: 2000, steps: []*result{
			{n: 1000, held: true, haveVer: true, verCPU: 400 * us},
			{n: 2000, held: true, haveVer: true, verCPU: 300 * us},
			{n: 3000, why: "p99", haveVer: true, verCPU: 310 * us}}},
		{run: storeRun{"postgres", 1}, best: 2000, steps: []*result{
			{n: 1000, held: true, haveVer: true, verCPU: 380 * us, haveDB: true, dbCPU: 60 * us},
			{n: 2000, held: true, haveVer: true, verCPU: 290 * us, haveDB: true, dbCPU: 40 * us},
			{n: 3000, why: "rate", haveVer: true, verCPU: 300 * us, haveDB: true, dbCPU: 41 * us}}},
		{run: storeRun{"postgres", 2}, best: 1000, steps: []*result{
			{n: 1000, held: true, haveVer: true, verCPU: 420 * us, haveDB: true, dbCPU: 50 * us},
			{n: 2000, why: "rate", haveVer: true, verCPU: 330 * us, haveDB: true, dbCPU: 45 * us}}},
	}
	var b strings.Builder
	summary(&b, done, 2*time.Second)
	out := b.String()
	for _, want := range []string{
		"CPU per attestation at 2000 agents",
		"| SQLite, 1 verifier | **2000** | 2000 | yes | 300 µs | (in the verifier) | **300 µs** | **1.00** |",
		"| PostgreSQL, 1 replica | **2000** | 2000 | yes | 290 µs | 40 µs | **330 µs** | **1.10** |",
		"| PostgreSQL, 2 replicas | **1000** | 2000 | no: rate | 330 µs | 45 µs | **375 µs** | **1.25** |",
		"| 1000 | 400 µs | 440 µs (1.10) | 470 µs (1.18) |",
		"| 3000 | 310 µs | 341 µs (1.10) | n/a |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
