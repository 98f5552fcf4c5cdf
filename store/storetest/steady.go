// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/intactsec/intact/store"
)

// Steady is the traffic of the backends' BenchmarkSteadyState: a
// verifier holding N enrolled agents, attesting each in turn.
type Steady struct {
	N   int
	pcr map[string][]byte
}

// steadyCreated is when the steady-state agents were enrolled.
var steadyCreated = time.Unix(1000, 0)

// NewSteady enrolls n agents (agent-00000, ...) in s, each with keys and
// certificates of realistic sizes.
func NewSteady(tb testing.TB, s store.Store, n int) *Steady {
	tb.Helper()
	ctx := context.Background()
	cert := bytes.Repeat([]byte{0x30}, 480)
	ekCert := bytes.Repeat([]byte{0x31}, 620)
	for i := 0; i < n; i++ {
		a := &store.Agent{ID: steadyID(i), Addr: "127.0.0.1:40000", CertDER: cert,
			EKPublic: append(bytes.Repeat([]byte{0x23}, 118), byte(i), byte(i>>8)), EKCert: ekCert,
			AKPublic: append(bytes.Repeat([]byte{0x24}, 88), byte(i), byte(i>>8)), EKKey: fmt.Sprintf("%064x", i),
			Policy: "fleet", LogSource: "intact", LogPCR: 13, Created: steadyCreated}
		a.State = store.StateEnrolled
		if err := s.CreateAgent(ctx, a); err != nil {
			tb.Fatal(err)
		}
	}
	return &Steady{N: n, pcr: map[string][]byte{"sha256": bytes.Repeat([]byte{7}, 32)}}
}

func steadyID(i int) string { return fmt.Sprintf("agent-%05d", i) }

// Update is attestation i: agent i%N trusted again, its list a record
// longer every third round.
func (s *Steady) Update(i int) store.Update {
	id := steadyID(i % s.N)
	now := time.Unix(2000, 0).Add(time.Duration(i) * time.Millisecond)
	st := store.Status{State: store.StateTrusted, Attestations: int64(i/s.N + 1), LastAttested: now, LastTrusted: now, LastVerified: now,
		Progress: store.Progress{ResetCount: 1, Clock: uint64(i), HaveClock: true, LogOffset: int64(21 + i/s.N/3), LogPCR: s.pcr, BootChecked: true, BootLog: store.BootLogNone}}
	return store.Update{AgentID: id, Created: steadyCreated, Status: st, Heartbeat: time.Hour,
		Result: store.Result{AgentID: id, Time: now, State: store.StateTrusted, LogOffset: st.Progress.LogOffset, Attestations: st.Attestations}}
}
