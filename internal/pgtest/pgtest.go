// SPDX-License-Identifier: Apache-2.0

// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql package (scripts/test.sh installs it), initdb into a private
// directory, the server on a unix socket only (no TCP), run as the
// unprivileged "postgres" user because PostgreSQL refuses to run as root.
// One server per test binary (Main stops it); each NewDB call gets a fresh
// database.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/internal/testenv"
)

var (
	once    sync.Once
	srv     *server
	srvErr  error
	counter atomic.Int64
)

type server struct {
	dir    string // data directory and socket directory
	bin    string
	uid    int
	gid    int
	socket string
}

// Main runs the tests and stops the server if one was started.
func Main(m *testing.M) {
	code := m.Run()
	if srv != nil {
		srv.stop()
	}
	os.Exit(code)
}

// binDir finds the server's binaries: pg_config's, else the newest of
// /usr/lib/postgresql/*/bin.
func binDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := string(out[:len(out)-1])
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	ds, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(ds, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(ds[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(ds[j])))
		return vi > vj
	})
	for _, d := range ds {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (apt-get install postgresql)")
}

func start() (*server, error) { return startWith(false) }

// Server is a PostgreSQL server started outside a test (bench/fleet).
type Server struct{ s *server }

// Start starts a server like the tests' (unix socket only, run as the
// postgres user, needs root); durable keeps fsync and synchronous
// commit on (the tests turn them off). Stop it with Stop.
func Start(durable bool) (*Server, error) {
	s, err := startWith(durable)
	if err != nil {
		return nil, err
	}
	return &Server{s}, nil
}

// NewDatabase creates a fresh database and returns its connection string.
func (s *Server) NewDatabase(ctx context.Context, name string) (string, error) {
	admin := fmt.Sprintf("host=%s user=intact dbname=postgres sslmode=disable", s.s.socket)
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return fmt.Sprintf("host=%s user=intact dbname=%s sslmode=disable", s.s.socket, name), nil
}

// PID is the server's postmaster process (its backends are its children).
func (s *Server) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.s.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// BinDir is the directory of the server's programs (pgbench).
func (s *Server) BinDir() string { return s.s.bin }

// Socket is the server's unix socket directory.
func (s *Server) Socket() string { return s.s.socket }

// Stop stops the server and removes its files.
func (s *Server) Stop() { s.s.stop() }

func startWith(durable bool) (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("no postgres user (the postgresql package makes it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("/tmp", "intact-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &server{dir: dir, bin: bin, uid: uid, gid: gid, socket: dir}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "intact", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", dir)
	if durable {
		opts = fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories=%s -c max_connections=200", dir)
	}
	if out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return s, nil
}

func (s *server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}}
	return cmd.CombinedOutput()
}

func (s *server) stop() {
	s.run("pg_ctl", "stop", "-m", "immediate", "-D", filepath.Join(s.dir, "data"))
	os.RemoveAll(s.dir)
}

// DSN returns the connection string of a fresh, empty database on the
// test server (starting it on first use). It needs root (the server runs
// as the postgres user) and the postgresql package: skipped on a
// developer box without them, a failure in CI.
func NewDB(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t)
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		if testenv.InCI() {
			t.Fatalf("starting PostgreSQL: %v", srvErr)
		}
		t.Skipf("skipping: PostgreSQL: %v", srvErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	admin := fmt.Sprintf("host=%s user=intact dbname=postgres sslmode=disable", srv.socket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	return fmt.Sprintf("host=%s user=intact dbname=%s sslmode=disable", srv.socket, name)
}
