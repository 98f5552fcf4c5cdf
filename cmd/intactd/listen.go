// SPDX-License-Identifier: Apache-2.0

package main

import (
	"log/slog"
	"net/http"
	"time"
)

// Every listener of intactd (control socket, metrics, attestation agent)
// is bounded, so that no client can take the daemon's descriptors: an fd
// exhaustion would fail the kernel's opens of event fds, and those
// accesses would be denied (or, before intactd survived EMFILE, the
// daemon stopped and enforcement failed open).
//
//   - at most limit connections at a time: further ones wait in the
//     kernel's accept backlog, which holds no descriptor of ours;
//   - read, write and idle timeouts: a slow or idle client gives its slot
//     back.
const (
	controlConns = 8
	metricsConns = 16
	agentConns   = 32
)

// The timeouts (variables for the tests only).
var (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 30 * time.Second
)

// boundedServer returns an http.Server with intactd's timeouts.
func boundedServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
