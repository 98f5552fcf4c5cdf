// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/netlimit"
)

// serveControl serves the local control API on a unix socket, mode 0600
// (root only): GET /v1/status.
func serveControl(path string, status func() enforce.Status, log *slog.Logger) (*http.Server, error) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(status())
	})
	srv := boundedServer(mux, log)
	go func() {
		if err := srv.Serve(netlimit.Listen(l, controlConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket", "err", err)
		}
	}()
	return srv, nil
}

// serveMetrics serves Prometheus metrics on addr at /metrics; it returns
// the address it listens on.
func serveMetrics(addr string, eng *enforce.Engine, log *slog.Logger) (*http.Server, string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		eng.WriteMetrics(w)
	})
	srv := boundedServer(mux, log)
	go func() {
		if err := srv.Serve(netlimit.Listen(l, metricsConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	return srv, l.Addr().String(), nil
}
