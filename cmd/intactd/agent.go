// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/internal/netlimit"
)

// The attestation agent (docs/attestation.md): with agent_listen set,
// intactd serves its measurement list, quotes and the boot event log to
// intact-verifier over HTTPS, from the TPM it measures with.

// biosLog is the firmware's TCG event log.
const biosLog = "/sys/kernel/security/tpm0/binary_bios_measurements"

// firmwareLog returns the boot event log to serve: the firmware's log
// (path) when it exists and the TPM is the machine's own. The firmware
// extended the host TPM's PCRs 0-9, not those of a simulator or an swtpm,
// whose PCRs the log would never replay to (boot-log failure).
func firmwareLog(tpmSpec, path string) string {
	if tpmSpec != "" && !strings.HasPrefix(tpmSpec, "/dev/") {
		return ""
	}
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// serveAgent serves the attestation agent on addr. Its identity (AK and
// TLS key) is kept in STATE_DIR/agent.
func serveAgent(cfg Config, m *listMeasurer, log *slog.Logger) (*http.Server, string, error) {
	if m == nil {
		return nil, "", errors.New("agent_listen: the policy measures nothing, so there is no list to attest")
	}
	id, err := agent.LoadOrCreateIdentity(filepath.Join(cfg.StateDir, "agent"), m.tpm)
	if err != nil {
		return nil, "", fmt.Errorf("agent identity: %w", err)
	}
	bootLog := firmwareLog(cfg.TPM, biosLog)
	// The verifier this agent answers: STATE_DIR/agent/verifier.crt if
	// the operator placed it, else the one that enrolls it.
	pin, err := agent.LoadVerifierPin(filepath.Join(cfg.StateDir, "agent", agent.VerifierFile))
	if err != nil {
		return nil, "", fmt.Errorf("agent verifier pin: %w", err)
	}
	a, err := agent.New(agent.Config{TPM: m.tpm, AK: id.AK,
		Log: agent.NewFileLog(filepath.Join(cfg.StateDir, measurementList), attest.LogIntact), LogPCR: cfg.PCR,
		BootLog: bootLog, CertDER: id.Cert.Certificate[0], Logger: log, Verifier: pin})
	if err != nil {
		return nil, "", err
	}
	l, err := net.Listen("tcp", cfg.AgentListen) // limited to agentConns at ServeTLS
	if err != nil {
		return nil, "", err
	}
	// intactd's bounded server (timeouts, header size) with the agent's
	// mutual TLS: only the pinned verifier is answered.
	srv := boundedServer(a, log)
	srv.TLSConfig = agent.ServerTLS(id.Cert, pin)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	go func() {
		if err := srv.ServeTLS(netlimit.Listen(l, agentConns), "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("agent listener", "err", err)
		}
	}()
	return srv, l.Addr().String(), nil
}
