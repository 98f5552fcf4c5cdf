// SPDX-License-Identifier: Apache-2.0

// Package postgres is the store.Store backend on PostgreSQL (pgx v5),
// for verifiers that outgrow one machine's SQLite file: several
// intact-verifier replicas share one database. It passes the same
// conformance suite (store/storetest) as the SQLite store.
//
// The connection pool is bounded (MaxConns, default 8) whatever the
// number of cores. Events are appended under a transaction-scoped
// advisory lock, so their sequence numbers commit in order and a webhook
// deliverer that reads "after seq N" never skips an event that another
// replica committed late.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/intactsec/intact/store"
)

// DB is a store.Store in a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// DefaultMaxConns bounds the pool: the verifier's writer, its API and a
// few concurrent enrollments; not one per core.
const DefaultMaxConns = 8

// Migrations, in order; migration i takes the schema from version i to
// i+1. Applied in one transaction each, under an advisory lock, so that
// replicas starting together migrate once.
var migrations = []string{
	// 0 -> 1: the schema of store version 4 (SQLite's user_version 4).
	`CREATE TABLE agents (
		id TEXT PRIMARY KEY,
		addr TEXT NOT NULL,
		cert BYTEA NOT NULL,
		ek_public BYTEA NOT NULL,
		ek_cert BYTEA,
		ak_public BYTEA NOT NULL,
		policy TEXT NOT NULL,
		log_source TEXT NOT NULL,
		log_pcr INTEGER NOT NULL,
		created BIGINT NOT NULL,
		status JSONB NOT NULL,
		outcome TEXT NOT NULL DEFAULT '',
		history_at BIGINT NOT NULL DEFAULT 0,
		ek_key TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX agents_ek_key ON agents(ek_key);
	CREATE INDEX agents_ek_public ON agents(ek_public);
	CREATE INDEX agents_ak_public ON agents(ak_public);
	CREATE TABLE results (
		id BIGSERIAL PRIMARY KEY,
		agent TEXT NOT NULL,
		time BIGINT NOT NULL,
		result JSONB NOT NULL
	);
	CREATE INDEX results_agent ON results(agent, id);
	CREATE INDEX results_time ON results(time, id);
	CREATE TABLE policies (
		name TEXT PRIMARY KEY,
		doc BYTEA NOT NULL,
		updated BIGINT NOT NULL
	);
	CREATE TABLE events (
		seq BIGSERIAL PRIMARY KEY,
		id TEXT NOT NULL UNIQUE,
		agent TEXT NOT NULL,
		type TEXT NOT NULL,
		time BIGINT NOT NULL,
		body BYTEA NOT NULL
	);
	CREATE INDEX events_agent ON events(agent, seq);
	CREATE TABLE receivers (
		name TEXT PRIMARY KEY,
		seq BIGINT NOT NULL
	);`,
	// 1 -> 2: leases of the agents, and the replicas that hold them.
	`ALTER TABLE agents ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE agents ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
	CREATE INDEX agents_lease_owner ON agents(lease_owner);
	CREATE INDEX agents_lease_until ON agents(lease_until);
	CREATE TABLE replicas (
		name TEXT PRIMARY KEY,
		seen BIGINT NOT NULL
	);`,
	// 2 -> 3: leases held per replica (lease.go): an agent names its
	// owner, the owner's row in replicas says until when its leases
	// live. Leases held at the upgrade lapse (until 0); the replicas'
	// next rounds claim them again.
	`ALTER TABLE replicas ADD COLUMN until BIGINT NOT NULL DEFAULT 0;
	DROP INDEX agents_lease_until;
	ALTER TABLE agents DROP COLUMN lease_until;
	ALTER TABLE agents SET (fillfactor = 50);`,
	// 3 -> 4: one replica at a time delivers to each webhook receiver,
	// the holder of the receiver's delivery lease.
	`ALTER TABLE receivers ADD COLUMN owner TEXT NOT NULL DEFAULT '';
	ALTER TABLE receivers ADD COLUMN owner_until BIGINT NOT NULL DEFAULT 0;`,
}

// Advisory lock keys (pg_advisory_xact_lock): arbitrary, fixed.
const (
	lockMigrate = 0x696e746163740001
	lockEvents  = 0x696e746163740002
)

// Options configure Open.
type Options struct {
	MaxConns int32 // default DefaultMaxConns
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string), migrating its schema to the current version.
func Open(ctx context.Context, dsn string, o Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	cfg.MaxConns = o.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.MinConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", redact(err))
	}
	d := &DB{pool: pool}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// OpenFile reads the DSN from a file (so that its password is never on
// a command line) and opens it.
func OpenFile(ctx context.Context, path string, o Options) (*DB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("postgres: dsn file: %w", err)
	}
	if len(b) > 4096 {
		return nil, fmt.Errorf("postgres: dsn file %s: larger than 4096 bytes", path)
	}
	return Open(ctx, strings.TrimSpace(string(b)), o)
}

// redact keeps a DSN's password out of error messages.
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "password="); i >= 0 {
		j := strings.IndexAny(msg[i:], " &")
		if j < 0 {
			j = len(msg) - i
		}
		msg = msg[:i] + "password=xxxxx" + msg[i+j:]
	}
	if i := strings.Index(msg, "://"); i >= 0 {
		if at := strings.Index(msg[i:], "@"); at > 0 {
			if c := strings.Index(msg[i+3:i+at], ":"); c >= 0 {
				msg = msg[:i+3+c+1] + "xxxxx" + msg[i+at:]
			}
		}
	}
	return errors.New(msg)
}

func (d *DB) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockMigrate)); err != nil {
			return fmt.Errorf("postgres: migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS intact_schema (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		var v int
		err := tx.QueryRow(ctx, `SELECT version FROM intact_schema`).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := tx.Exec(ctx, `INSERT INTO intact_schema (version) VALUES (0)`); err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			v = 0
		} else if err != nil {
			return fmt.Errorf("postgres: reading the schema version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("postgres: the database has schema version %d, this verifier knows %d: upgrade the verifier", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("postgres: migrating to schema version %d: %w", v+1, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE intact_schema SET version = $1`, v)
		return err
	})
}

// Close closes the pool.
func (d *DB) Close() error { d.pool.Close(); return nil }

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (d *DB) CreateAgent(ctx context.Context, a *store.Agent, evs ...store.Event) error {
	st, err := json.Marshal(a.Status)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO agents (id, addr, cert, ek_public, ek_cert, ak_public, policy, log_source, log_pcr, created, status, ek_key)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
			a.ID, a.Addr, a.CertDER, a.EKPublic, a.EKCert, a.AKPublic, a.Policy, a.LogSource, a.LogPCR, ts(a.Created), st, a.EKKey)
		if isUnique(err) {
			return fmt.Errorf("agent %q: %w", a.ID, store.ErrExists)
		}
		if err != nil {
			return err
		}
		return appendEventsTx(ctx, tx, evs)
	})
}

// agentCols are read FROM agentsLeased: an agent with its lease (the
// owner's row in replicas says until when it lives).
const agentCols = `id, addr, cert, ek_public, ek_cert, ak_public, policy, log_source, log_pcr, created, status, ek_key, lease_owner, COALESCE(r.until, 0)`

const agentsLeased = `agents LEFT JOIN replicas r ON r.name = agents.lease_owner AND agents.lease_owner <> ''`

func scanAgent(row pgx.Row) (*store.Agent, error) {
	var a store.Agent
	var created int64
	var st []byte
	var until int64
	if err := row.Scan(&a.ID, &a.Addr, &a.CertDER, &a.EKPublic, &a.EKCert, &a.AKPublic, &a.Policy, &a.LogSource, &a.LogPCR, &created, &st, &a.EKKey,
		&a.Lease.Replica, &until); err != nil {
		return nil, err
	}
	a.Created = fromTS(created)
	a.Lease.Until = fromTS(until)
	if err := json.Unmarshal(st, &a.Status); err != nil {
		return nil, fmt.Errorf("agent %q: stored status: %w", a.ID, err)
	}
	return &a, nil
}

func (d *DB) GetAgent(ctx context.Context, id string) (*store.Agent, error) {
	a, err := scanAgent(d.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM `+agentsLeased+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("agent %q: %w", id, store.ErrNotFound)
	}
	return a, err
}

func (d *DB) ListAgents(ctx context.Context) ([]*store.Agent, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+agentCols+` FROM `+agentsLeased+` ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (d *DB) CountAgents(ctx context.Context) ([]store.StateCount, error) {
	rows, err := d.pool.Query(ctx, `SELECT COALESCE(status->>'state', ''),
			CASE WHEN r.until > `+dbNow+` THEN agents.lease_owner ELSE '' END AS holder, count(*)
		FROM `+agentsLeased+` GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.StateCount
	for rows.Next() {
		var c store.StateCount
		if err := rows.Scan(&c.State, &c.Replica, &c.Agents); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (d *DB) FindAgentsByKey(ctx context.Context, ekKey string, ekPublic, akPublic []byte) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT id FROM (SELECT id FROM agents WHERE ek_key = $1 AND $1 <> ''
		UNION SELECT id FROM agents WHERE ek_public = $2
		UNION SELECT id FROM agents WHERE ak_public = $3) u ORDER BY id COLLATE "C"`, ekKey, ekPublic, akPublic)
	if err != nil {
		return nil, err
	}
	return strings0(pgx.CollectRows(rows, pgx.RowTo[string]))
}

func (d *DB) DeleteAgent(ctx context.Context, id string, evs ...store.Event) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM agents WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("agent %q: %w", id, store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM results WHERE agent = $1`, id); err != nil {
			return err
		}
		return appendEventsTx(ctx, tx, evs)
	})
}

func (d *DB) SaveAttestations(ctx context.Context, batch []store.Update) error {
	_, err := d.saveAttestations(ctx, "", batch)
	return err
}

// saveAttestations stores batch; with a replica, only the updates of the
// agents whose lease it holds now (by the database's clock). It returns
// the ids of the agents whose updates it dropped: not leased by replica,
// removed or enrolled again meanwhile.
func (d *DB) saveAttestations(ctx context.Context, replica string, batch []store.Update) ([]string, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	var dropped []string
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		dropped = dropped[:0]
		droppedSet := map[string]bool{}
		// One round trip for the batch's current outcomes; rows locked
		// against a concurrent writer of the same agents.
		ids := make([]string, len(batch))
		for i, u := range batch {
			ids[i] = u.AgentID
		}
		q := `SELECT id, created, outcome, history_at FROM agents WHERE id = ANY($1) ORDER BY id FOR UPDATE`
		args := []any{ids}
		if replica != "" {
			q = `SELECT id, created, outcome, history_at FROM agents WHERE id = ANY($1)
				AND lease_owner = $2 AND EXISTS (SELECT 1 FROM replicas WHERE name = $2 AND until > ` + dbNow + `)
				ORDER BY id FOR UPDATE`
			args = append(args, replica)
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		type cur struct {
			created, histAt int64
			outcome         string
		}
		have := map[string]*cur{}
		for rows.Next() {
			var id string
			c := &cur{}
			if err := rows.Scan(&id, &c.created, &c.outcome, &c.histAt); err != nil {
				rows.Close()
				return err
			}
			have[id] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The agents' new statuses in one statement (the last of each
		// agent's updates), the kept results queued behind it: one round
		// trip, one executor run for the batch.
		var b pgx.Batch
		var evs []store.Event
		slot := make(map[string]int, len(batch))
		var uIDs, uStatus, uOutcome []string
		var uHist []int64
		for _, u := range batch {
			c := have[u.AgentID]
			if c == nil || c.created != ts(u.Created) {
				// not this replica's lease, or the agent was removed (or
				// enrolled again) meanwhile
				if !droppedSet[u.AgentID] {
					droppedSet[u.AgentID] = true
					dropped = append(dropped, u.AgentID)
				}
				continue
			}
			outcome := u.Result.Outcome()
			at := ts(u.Result.Time)
			keep, heartbeat := store.KeepResult(&u, outcome, c.outcome, c.histAt, at)
			if keep {
				c.histAt = at
			}
			c.outcome = outcome // a second update of the agent in the batch compares with this one
			st, err := json.Marshal(u.Status)
			if err != nil {
				return err
			}
			if i, ok := slot[u.AgentID]; ok {
				uStatus[i], uOutcome[i], uHist[i] = string(st), outcome, c.histAt
			} else {
				slot[u.AgentID] = len(uIDs)
				uIDs, uStatus, uOutcome, uHist = append(uIDs, u.AgentID), append(uStatus, string(st)), append(uOutcome, outcome), append(uHist, c.histAt)
			}
			if keep {
				res := u.Result
				res.Heartbeat = heartbeat
				r, err := json.Marshal(&res)
				if err != nil {
					return err
				}
				b.Queue(`INSERT INTO results (agent, time, result) VALUES ($1,$2,$3)`, u.AgentID, at, r)
			}
			evs = append(evs, u.Events...)
		}
		if len(uIDs) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE agents SET status = u.status::jsonb, outcome = u.outcome, history_at = u.hist
				FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(id, status, outcome, hist)
				WHERE agents.id = u.id`, uIDs, uStatus, uOutcome, uHist); err != nil {
				return err
			}
		}
		if b.Len() > 0 {
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return err
			}
		}
		return appendEventsTx(ctx, tx, evs)
	})
	if err != nil {
		return nil, err
	}
	return dropped, nil
}

func (d *DB) History(ctx context.Context, id string, limit int) ([]store.Result, error) {
	rows, err := d.pool.Query(ctx, `SELECT result FROM results WHERE agent = $1 ORDER BY id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Result
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var r store.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("stored result: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (d *DB) PruneHistory(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("pruning history: limit %d: %w", limit, store.ErrInvalid)
	}
	tag, err := d.pool.Exec(ctx, `DELETE FROM results WHERE id IN
		(SELECT id FROM results WHERE time < $1 ORDER BY time, id LIMIT $2)`, ts(before), limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func (d *DB) PutPolicy(ctx context.Context, p *store.Policy) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO policies (name, doc, updated) VALUES ($1,$2,$3)
		ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated`, p.Name, p.Doc, ts(p.Updated))
	return err
}

func (d *DB) GetPolicy(ctx context.Context, name string) (*store.Policy, error) {
	p := &store.Policy{Name: name}
	var updated int64
	err := d.pool.QueryRow(ctx, `SELECT doc, updated FROM policies WHERE name = $1`, name).Scan(&p.Doc, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("policy %q: %w", name, store.ErrNotFound)
	}
	p.Updated = fromTS(updated)
	return p, err
}

func (d *DB) ListPolicies(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT name FROM policies ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return strings0(pgx.CollectRows(rows, pgx.RowTo[string]))
}

func (d *DB) AppendEvents(ctx context.Context, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return appendEventsTx(ctx, tx, evs) })
}

// appendEventsTx adds events to the outbox in tx, in order, holding the
// events lock until tx ends: sequence numbers are taken and committed in
// the same order by every replica.
func appendEventsTx(ctx context.Context, tx pgx.Tx, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockEvents)); err != nil {
		return err
	}
	for i := range evs {
		e := &evs[i]
		body := e.Body
		if body == nil {
			body = []byte{}
		}
		_, err := tx.Exec(ctx, `INSERT INTO events (id, agent, type, time, body) VALUES ($1,$2,$3,$4,$5)`, e.ID, e.AgentID, e.Type, ts(e.Time), body)
		if isUnique(err) {
			return fmt.Errorf("event %q: %w", e.ID, store.ErrExists)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func collectEvents(rows pgx.Rows, err error) ([]store.Event, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var t int64
		if err := rows.Scan(&e.Seq, &e.ID, &e.AgentID, &e.Type, &t, &e.Body); err != nil {
			return nil, err
		}
		e.Time = fromTS(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

func (d *DB) AgentEvents(ctx context.Context, id string, since time.Time, limit int) ([]store.Event, error) {
	return collectEvents(d.pool.Query(ctx, `SELECT seq, id, agent, type, time, body FROM
		(SELECT * FROM events WHERE agent = $1 AND time >= $2 ORDER BY seq DESC LIMIT $3) e ORDER BY seq`, id, ts(since), limit))
}

func (d *DB) AddReceiver(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		// under the events lock: the mark is the newest committed event
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockEvents)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO receivers (name, seq)
			VALUES ($1, COALESCE((SELECT MAX(seq) FROM events), 0)) ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT seq FROM receivers WHERE name = $1`, name).Scan(&seq)
	})
	return seq, err
}

func (d *DB) Undelivered(ctx context.Context, receiver string, limit int) ([]store.Event, error) {
	var mark int64
	err := d.pool.QueryRow(ctx, `SELECT seq FROM receivers WHERE name = $1`, receiver).Scan(&mark)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("receiver %q: %w", receiver, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return collectEvents(d.pool.Query(ctx, `SELECT seq, id, agent, type, time, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, mark, limit))
}

func (d *DB) MarkDelivered(ctx context.Context, receiver string, seq int64) error {
	tag, err := d.pool.Exec(ctx, `UPDATE receivers SET seq = GREATEST(seq, $1) WHERE name = $2`, seq, receiver)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("receiver %q: %w", receiver, store.ErrNotFound)
	}
	return nil
}

func (d *DB) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("pruning events: limit %d: %w", limit, store.ErrInvalid)
	}
	tag, err := d.pool.Exec(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE time < $1
			AND seq <= COALESCE((SELECT MIN(seq) FROM receivers), 9223372036854775807)
			ORDER BY seq LIMIT $2)`, ts(before), limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// strings0 returns nil for no rows, as the SQLite store does.
func strings0(s []string, err error) ([]string, error) {
	if len(s) == 0 {
		return nil, err
	}
	return s, err
}
