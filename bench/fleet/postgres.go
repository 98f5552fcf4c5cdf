// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/internal/pgtest"
)

// startPostgres runs replicas `intact-verifier serve` replicas on one
// PostgreSQL database: the one in c.dsnFile, or a fresh one on a server
// started here (durable: fsync and synchronous commit on, as SQLite's
// verifier commits). The target is the first replica's API (enrollments
// and reads; every replica answers the same); its CPU is all replicas'.
func startPostgres(ctx context.Context, c config, replicas int, state string, logw io.Writer) (*target, error) {
	dsnFile := c.dsnFile
	var srv *pgtest.Server
	if dsnFile == "" {
		var err error
		if srv, err = pgtest.Start(true); err != nil {
			return nil, fmt.Errorf("starting PostgreSQL (or give -pg-dsn-file): %w", err)
		}
		dsn, err := srv.NewDatabase(ctx, "fleet")
		if err != nil {
			srv.Stop()
			return nil, err
		}
		dsnFile = filepath.Join(state, "dsn")
		if err := os.WriteFile(dsnFile, []byte(dsn), 0o600); err != nil {
			srv.Stop()
			return nil, err
		}
	}
	b, err := os.ReadFile(dsnFile)
	if err != nil {
		return nil, err
	}
	dsn := strings.TrimSpace(string(b))
	var reps []*target
	stopAll := func() error {
		var errs []error
		for _, r := range reps {
			errs = append(errs, r.stop())
		}
		if srv != nil {
			srv.Stop()
		}
		return errors.Join(errs...)
	}
	for i := range replicas {
		// Every replica has its own state directory; enrollments go to the
		// first, so its EK allowlist is the one that counts.
		rs := state
		if i > 0 {
			rs = filepath.Join(state, fmt.Sprintf("r%d", i+1))
			if err := shareIdentity(state, rs); err != nil {
				stopAll()
				return nil, err
			}
		}
		r, err := startBinary(c.bin, rs, c.interval, logw, "--db-file", dsnFile, "--replica", fmt.Sprintf("r%d", i+1))
		if err != nil {
			stopAll()
			return nil, err
		}
		reps = append(reps, r)
	}
	t := *reps[0]
	t.stop = stopAll
	t.kill = nil
	t.cpu = func() (time.Duration, bool) {
		var sum time.Duration
		for _, r := range reps {
			d, ok := r.cpu()
			if !ok {
				return 0, false
			}
			sum += d
		}
		return sum, true
	}
	t.dbSize = func() int64 {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, dsn)
		if err != nil {
			return 0
		}
		defer conn.Close(cctx)
		var n int64
		conn.QueryRow(cctx, "SELECT pg_database_size(current_database())").Scan(&n)
		return n
	}
	if srv != nil {
		t.dbCPU = func() (time.Duration, bool) {
			pid, err := srv.PID()
			if err != nil {
				return 0, false
			}
			return treeCPU(pid)
		}
	}
	return &t, nil
}

// treeCPU is the CPU time of process pid (PostgreSQL's postmaster), of
// the children it has reaped (a backend or autovacuum worker that exited:
// /proc/PID/stat's cutime and cstime) and of its live children (backends,
// walwriter, checkpointer), read from /proc.
func treeCPU(pid int) (time.Duration, bool) {
	total, err := procCPUWithChildren(pid)
	if err != nil {
		return 0, false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if ppid(p) == pid {
			if d, err := procCPU(p); err == nil {
				total += d
			}
		}
	}
	return total, true
}

// ppid is a process's parent (0 if unknown).
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// identityFiles are what replicas must share (docs/attestation.md): the
// operator API token, the EAR signing key, and the TLS certificate and key
// the verifier presents to agents (an agent pins the certificate of the
// verifier that enrolled it and refuses any other).
var identityFiles = []string{"api-token", "ear.key", "verifier.crt", "verifier.key"}

// shareIdentity copies a started replica's identity files from the state
// directory from into a new replica's state directory to.
func shareIdentity(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for _, f := range identityFiles {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
