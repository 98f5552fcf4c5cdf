// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/netlimit"
)

// The metrics listener (serve --metrics-listen) is plain HTTP, meant for
// loopback or a scraper's network, and bounded like intactd's: at most
// metricsConns connections at a time (further ones wait in the kernel's
// backlog, holding no descriptor of ours), read, write and idle timeouts
// so a slow or idle client gives its slot back.
const metricsConns = 16

var (
	metricsReadTimeout = 10 * time.Second
	metricsIdleTimeout = 30 * time.Second
)

// serveMetrics serves v's metrics on addr at /metrics until ctx ends; it
// returns the address it listens on.
func serveMetrics(ctx context.Context, addr string, v *verifier.Verifier, log *slog.Logger) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if err := v.WriteMetrics(r.Context(), w); err != nil {
			// the counters were written; the store's counts are missing
			log.Warn("metrics: store counts", "err", err)
		}
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsReadTimeout * 3,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(limitListen(l, metricsConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "err", err)
		}
	}()
	return l.Addr().String(), nil
}

// limitListen accepts at most n connections of l at once
// (internal/netlimit).
func limitListen(l net.Listener, n int) net.Listener { return netlimit.Listen(l, n) }
