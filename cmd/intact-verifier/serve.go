// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/ui"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/attest/webhook"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/sig"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/postgres"
	"github.com/intactsec/intact/store/sqlite"
)

// Files of the state directory.
const (
	tokenFile  = "api-token"
	certFile   = "verifier.crt"
	keyFile    = "verifier.key"
	sqliteFile = "verifier.db"
	earKey     = "ear.key" // signs attestation results (EAR)
)

const serveUsage = `
Usage: intact-verifier serve --state DIR (--ek-ca DIR | --ek-allow FILE)... [--listen ADDR]
                             [--interval 2s] [--policy-cert FILE]...
                             [--history 168h] [--history-heartbeat 1h]
                             [--webhook URL... --webhook-secret FILE] [--webhook-max-backoff 5m]

Runs the verifier: enrolls agents, attests each at --interval against its
runtime policy, signs attestation results (EAR), delivers events to
webhooks, and serves the operator API on --listen. It creates in its
state directory, if missing: api-token (random, 0600), verifier.key and
verifier.crt (self-signed ECDSA P-256), ear.key (signs attestation
results, 0600) and verifier.db (SQLite). See docs/attestation.md.
`

// cmdServe runs the verifier: its command line (parseServeFlags), the
// files it reads (webhook secret, EK trust), its state directory
// (openIdentity), its store (openServeStore), the verifier and its HTTPS
// server (assembleServer), then the run loop (run).
func cmdServe(e *env, args []string) error {
	c, err := parseServeFlags(e, args)
	if err != nil {
		return err
	}
	receivers, err := c.webhookReceivers()
	if err != nil {
		return err
	}
	ekTrust, err := c.ekTrust()
	if err != nil {
		return err
	}
	id, err := openIdentity(c.state)
	if err != nil {
		return err
	}
	st, leases, err := c.openServeStore()
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	s, err := assembleServer(c, st, leases, id, receivers, ekTrust, log)
	if err != nil {
		return err
	}
	return s.run(c, log)
}

// serveConfig is serve's command line, checked.
type serveConfig struct {
	state, listen, db, dbFile string
	interval, timeout         time.Duration
	retention                 time.Duration // --history
	heartbeat                 time.Duration // for verifier.Options: -1 none
	policyCerts, hooks        []string
	ekCAs, ekAllows           []string
	hookSecret                string
	hookMax                   time.Duration
	hookHTTP, withUI          bool
	maxRecords, maxBytes      int64
	metricsAddr, replica      string
}

// parseServeFlags parses and checks serve's flags (usage errors), or
// describes them for the reference.
func parseServeFlags(e *env, args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.state, "state", "", "state `DIR` (required): API token, TLS and EAR keys, database; created 0700")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8443", "serve the operator API (HTTPS) on `ADDR`")
	fs.StringVar(&c.db, "db", "", "the database: an SQLite `FILE`, or a PostgreSQL URL postgres://... (default STATE/verifier.db)")
	fs.StringVar(&c.dbFile, "db-file", "", "`FILE` holding a PostgreSQL connection string (a password is refused on the command line)")
	fs.DurationVar(&c.interval, "interval", 2*time.Second, "time between two attestations of an agent (at least 100ms)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on one request to an agent")
	fs.DurationVar(&c.retention, "history", 7*24*time.Hour, "how long attestation results and delivered events are kept")
	fs.DurationVar(&c.heartbeat, "history-heartbeat", verifier.DefaultHistoryHeartbeat, "while an agent's outcome does not change, one history entry per this period (0: changes only)")
	fs.Func("policy-cert", "accept only runtime policies signed by this certificate `FILE`'s key (repeatable)", func(v string) error { c.policyCerts = append(c.policyCerts, v); return nil })
	fs.Func("ek-ca", "trust agents' endorsement keys that chain to the TPM makers' CA certificates in `DIR` (repeatable; e.g. /usr/share/intact/ek-ca)", func(v string) error { c.ekCAs = append(c.ekCAs, v); return nil })
	fs.Func("ek-allow", "trust the endorsement keys whose hashes `FILE` lists (repeatable; see intact-verifier ek)", func(v string) error { c.ekAllows = append(c.ekAllows, v); return nil })
	fs.Func("webhook", "deliver signed event notifications to `URL` (repeatable)", func(v string) error { c.hooks = append(c.hooks, v); return nil })
	fs.StringVar(&c.hookSecret, "webhook-secret", "", "`FILE` holding the webhooks' HMAC key")
	fs.DurationVar(&c.hookMax, "webhook-max-backoff", 5*time.Minute, "longest wait between two delivery attempts")
	fs.BoolVar(&c.hookHTTP, "webhook-allow-http", false, "accept http:// webhook receivers (notifications in clear text)")
	fs.BoolVar(&c.withUI, "ui", true, "serve the web dashboard with the API (--ui=false: the API only)")
	fs.Int64Var(&c.maxRecords, "max-attest-records", verifier.DefaultMaxRecords, "most measurement-list records one attestation may carry; more is a security failure")
	fs.Int64Var(&c.maxBytes, "max-attest-bytes", verifier.DefaultMaxBytes, "most measurement-list bytes one attestation may carry; more is a security failure")
	fs.StringVar(&c.metricsAddr, "metrics-listen", "", "serve Prometheus metrics over plain HTTP on `ADDR` (e.g. 127.0.0.1:9465; default off)")
	fs.StringVar(&c.replica, "replica", "", "this replica's `NAME` on a store replicas share (PostgreSQL; default HOSTNAME-PID)")
	if e.describe != nil {
		e.describe(fs, serveUsage) // the reference (docs_test.go)
		return nil, errDescribed
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, printHelp(e, serveUsage, fs)
		}
		return nil, usagef("serve: %v", err)
	}
	if c.state == "" || fs.NArg() != 0 {
		return nil, usagef("usage: serve --state DIR (--ek-ca DIR | --ek-allow FILE)... [--listen ADDR] [--interval 2s] [--policy-cert FILE]...")
	}
	if c.interval < 100*time.Millisecond {
		return nil, usagef("--interval %v is too short", c.interval)
	}
	if len(c.hooks) > 0 && c.hookSecret == "" {
		return nil, usagef("--webhook needs --webhook-secret FILE (the HMAC key receivers check signatures with)")
	}
	if c.retention <= 0 {
		return nil, usagef("--history %v: want a positive duration", c.retention)
	}
	if c.heartbeat < 0 {
		return nil, usagef("--history-heartbeat %v: want 0 (changes only) or a positive duration", c.heartbeat)
	}
	if c.heartbeat == 0 {
		c.heartbeat = -1 // verifier.Options: no heartbeats
	}
	if c.maxRecords < 1 || c.maxBytes < attest.MaxLogChunk {
		return nil, usagef("--max-attest-records %d, --max-attest-bytes %d: want at least 1 record and %d bytes (one chunk)", c.maxRecords, c.maxBytes, attest.MaxLogChunk)
	}
	if c.hookMax < time.Second {
		return nil, usagef("--webhook-max-backoff %v is too short", c.hookMax)
	}
	return c, nil
}

// webhookReceivers reads the webhook secret and checks each receiver.
func (c *serveConfig) webhookReceivers() ([]webhook.Receiver, error) {
	if len(c.hooks) == 0 {
		return nil, nil
	}
	b, err := readfile.Read(c.hookSecret, readfile.Small)
	if err != nil {
		return nil, fmt.Errorf("--webhook-secret: %w", err)
	}
	secret := []byte(strings.TrimSpace(string(b)))
	var receivers []webhook.Receiver
	for _, u := range c.hooks {
		r := webhook.Receiver{URL: u, Secret: secret, AllowHTTP: c.hookHTTP}
		if err := webhook.CheckReceiver(r); err != nil {
			return nil, usagef("--webhook: %v", err)
		}
		receivers = append(receivers, r)
	}
	return receivers, nil
}

// ekTrust returns the EK trust of --ek-ca and --ek-allow, read once now
// (an error is the operator's, at startup) and again at each enrollment
// so that added CAs and allowlist entries apply.
func (c *serveConfig) ekTrust() (verifier.EKTrustFunc, error) {
	if len(c.ekCAs) == 0 && len(c.ekAllows) == 0 {
		return nil, usagef("serve needs --ek-ca DIR (TPM makers' CAs, such as dist/ek-ca) or --ek-allow FILE (EKs allowed by name), or both: enrollment checks every agent's endorsement key")
	}
	ekTrust := verifier.EKTrustFiles(c.ekCAs, c.ekAllows)
	if _, err := ekTrust(); err != nil {
		return nil, err
	}
	return ekTrust, nil
}

// identity is what the state directory holds besides the database.
type identity struct {
	token  string            // the API token
	cert   tls.Certificate   // the API's certificate, presented to the agents too
	signer *ecdsa.PrivateKey // signs attestation results (EAR)
}

// openIdentity makes the state directory private and reads (or creates)
// the API token, the verifier's certificate and the EAR key in it.
func openIdentity(state string) (*identity, error) {
	if err := privateDir(state); err != nil {
		return nil, err
	}
	token, err := loadOrCreateToken(filepath.Join(state, tokenFile))
	if err != nil {
		return nil, err
	}
	cert, err := loadOrCreateCert(state)
	if err != nil {
		return nil, err
	}
	signer, err := loadOrCreateEARKey(filepath.Join(state, earKey))
	if err != nil {
		return nil, err
	}
	return &identity{token: token, cert: cert, signer: signer}, nil
}

// openServeStore opens the store; on a store that replicas share it
// returns its leases too, and names this replica (default HOSTNAME-PID).
func (c *serveConfig) openServeStore() (store.Store, store.Leaser, error) {
	st, err := openStore(c.db, c.dbFile, c.state)
	if err != nil {
		return nil, nil, err
	}
	leases, shared := st.(store.Leaser)
	if !shared {
		if c.replica != "" {
			st.Close()
			return nil, nil, usagef("--replica needs a store that replicas share (--db postgres://… or --db-file)")
		}
		return st, nil, nil
	}
	if c.replica == "" {
		host, _ := os.Hostname()
		c.replica = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return st, leases, nil
}

// server is the verifier and the HTTPS server of its API (and
// dashboard), assembled and not yet running.
type server struct {
	v    *verifier.Verifier
	st   store.Store
	dash *ui.UI // nil with --ui=false
	srv  *http.Server
	ln   net.Listener
}

// assembleServer makes the verifier, its API and dashboard on one mux,
// and the HTTPS server on the listening socket.
func assembleServer(c *serveConfig, st store.Store, leases store.Leaser, id *identity, receivers []webhook.Receiver,
	ekTrust verifier.EKTrustFunc, log *slog.Logger) (*server, error) {
	var signers *sig.Keyring // runtime policies must be signed by one of these
	if len(c.policyCerts) > 0 {
		signers = sig.NewKeyring()
		for _, p := range c.policyCerts {
			cs, err := sig.LoadCertificates(p)
			if err != nil {
				return nil, fmt.Errorf("--policy-cert: %w", err)
			}
			for _, cert := range cs {
				signers.Add(cert)
			}
		}
	}
	cert := id.cert
	v, err := verifier.New(verifier.Options{Store: st, Logger: log, Interval: c.interval, Timeout: c.timeout, PolicySigners: signers,
		EARKey: id.signer, Webhooks: receivers, WebhookMax: c.hookMax, HistoryHeartbeat: c.heartbeat, EKTrust: ekTrust,
		MaxAttestRecords: c.maxRecords, MaxAttestBytes: c.maxBytes, Leases: leases, Replica: c.replica,
		ClientCert: &cert}) // presented to the agents, which pin it
	if err != nil {
		return nil, err
	}
	h, err := verifier.NewAPI(v, id.token)
	if err != nil {
		return nil, err
	}
	// The dashboard shares the API's listener and TLS (so its session
	// cookie is Secure) under /ui/; the API keeps every other path.
	mux := http.NewServeMux()
	mux.Handle("/", h)
	s := &server{v: v, st: st}
	if c.withUI {
		if s.dash, err = ui.New(ui.Options{Store: st, Verifier: v, Token: id.token, Interval: c.interval, Logger: log}); err != nil {
			return nil, err
		}
		mux.Handle(ui.Prefix, s.dash)
	}
	if s.ln, err = net.Listen("tcp", c.listen); err != nil {
		return nil, err
	}
	s.srv = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// run runs the verifier, the pruning, the metrics listener and the
// dashboard, and serves the API until SIGINT or SIGTERM; then it shuts
// the server down and waits for the verifier to store its last results.
func (s *server) run(c *serveConfig, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- s.v.Run(ctx) }()
	go pruneHistory(ctx, s.st, c.retention, log)
	if c.metricsAddr != "" {
		addr, err := serveMetrics(ctx, c.metricsAddr, s.v, log)
		if err != nil {
			stop()
			<-done
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		log.Info("serving metrics", "addr", "http://"+addr+"/metrics")
	}
	if s.dash != nil {
		go s.dash.Run(ctx)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	}()
	log.Info("intact-verifier serving", "addr", s.ln.Addr().String(), "state", c.state, "interval", c.interval, "replica", c.replica)
	if err := s.srv.ServeTLS(s.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		stop()
		<-done
		return err
	}
	return <-done
}

// Pruning deletes history rows, then outbox events, pruneBatch at a
// time, pausing pruneGap between batches: the attestation results'
// writer, on the same single SQLite connection, waits for at most one
// batch (a few milliseconds).
const (
	pruneBatch = 1000
	pruneGap   = 20 * time.Millisecond
)

func pruneHistory(ctx context.Context, st store.Store, keep time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			start := time.Now()
			n, err := store.PruneHistoryBatches(ctx, st, start.Add(-keep), pruneBatch, pruneGap)
			if err != nil && ctx.Err() == nil {
				log.Warn("pruning history", "deleted", n, "err", err)
			} else if n > 0 {
				log.Info("pruned history", "deleted", n, "took", time.Since(start).Round(time.Millisecond))
			}
			start = time.Now()
			n, err = store.PruneEventsBatches(ctx, st, start.Add(-keep), pruneBatch, pruneGap)
			if err != nil && ctx.Err() == nil {
				log.Warn("pruning events", "deleted", n, "err", err)
			} else if n > 0 {
				log.Info("pruned events", "deleted", n, "took", time.Since(start).Round(time.Millisecond))
			}
		}
	}
}

// privateDir makes the state directory (keys, token, database) private:
// created mode 0700 whatever the umask, an existing one open to group or
// others tightened to 0700. One owned by another user, or not a
// directory, is refused.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s: not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s: owned by uid %d, not by this user (%d)", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("state directory %s: %w", dir, err)
		}
	}
	return nil
}

// loadOrCreateToken reads the api token, creating a random one (mode
// 0600) if the file does not exist.
func loadOrCreateToken(path string) (string, error) {
	b, err := readfile.Read(path, readfile.Small)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		tok := hex.EncodeToString(raw)
		if err := atomicfile.WriteFile(path, []byte(tok+"\n"), 0o600, true); err != nil {
			return "", err
		}
		return tok, nil
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("%s: token shorter than 16 characters", path)
	}
	return tok, nil
}

func loadOrCreateCert(dir string) (tls.Certificate, error) {
	c, k := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	cert, err := tls.LoadX509KeyPair(c, k)
	if !errors.Is(err, fs.ErrNotExist) {
		return cert, err
	}
	certPEM, keyPEM, err := attest.NewSelfSigned("intact-verifier")
	if err != nil {
		return cert, err
	}
	if err := atomicfile.WriteFile(k, keyPEM, 0o600, false); err != nil {
		return cert, err
	}
	if err := atomicfile.WriteFile(c, certPEM, 0o644, false); err != nil {
		return cert, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// loadOrCreateEARKey reads the EAR signing key (ECDSA P-256, PKCS#8
// PEM), creating it (mode 0600, atomically, never over another) if the
// file does not exist.
func loadOrCreateEARKey(path string) (*ecdsa.PrivateKey, error) {
	return loadOrCreateEARKeyWith(path, func() (*ecdsa.PrivateKey, error) {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
}

// loadOrCreateEARKeyWith is loadOrCreateEARKey with the key generator
// given: if another process creates the file meanwhile, its key is read
// and used.
func loadOrCreateEARKeyWith(path string, generate func() (*ecdsa.PrivateKey, error)) (*ecdsa.PrivateKey, error) {
	b, err := readfile.Read(path, readfile.Key)
	if errors.Is(err, fs.ErrNotExist) {
		k, gerr := generate()
		if gerr != nil {
			return nil, gerr
		}
		pemKey, merr := sig.MarshalPrivateKey(k)
		if merr != nil {
			return nil, merr
		}
		werr := atomicfile.WriteFile(path, pemKey, 0o600, true)
		if werr == nil {
			return k, nil
		}
		if !errors.Is(werr, fs.ErrExist) {
			return nil, werr
		}
		b, err = readfile.Read(path, readfile.Key) // made meanwhile by another process
	}
	if err != nil {
		return nil, err
	}
	k, err := sig.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: %w", path, ear.ErrKey)
	}
	return ek, nil
}

// openStore opens the verifier's store: SQLite in the state directory by
// default (or the file --db names), PostgreSQL for --db postgres://… or
// --db-file FILE holding the connection string. A password on the command
// line is refused: it would be visible to every user in the process list.
func openStore(db, dbFile, state string) (store.Store, error) {
	isPG := func(s string) bool {
		return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
	}
	switch {
	case db != "" && dbFile != "":
		return nil, usagef("--db and --db-file exclude each other")
	case dbFile != "":
		return postgres.OpenFile(context.Background(), dbFile, postgres.Options{})
	case isPG(db):
		if u, err := url.Parse(db); err != nil {
			return nil, usagef("--db: not a URL: %v", err)
		} else if _, has := u.User.Password(); has || u.Query().Has("password") {
			return nil, usagef("--db: a password on the command line is visible to every user; put the connection string in a file (--db-file FILE, mode 0600) or use ~/.pgpass")
		}
		return postgres.Open(context.Background(), db, postgres.Options{})
	case db == "":
		db = filepath.Join(state, sqliteFile)
	}
	return sqlite.Open(db)
}
