// SPDX-License-Identifier: Apache-2.0

// Package sqlite is the embedded store.Store backend: one SQLite file
// through the pure-Go modernc.org/sqlite driver (no cgo), in WAL mode.
// It is the only package that imports the driver.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/intactsec/intact/store"
)

// DB is a store.Store in an SQLite database file.
type DB struct {
	db *sql.DB
}

var _ store.Store = (*DB)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS agents (
	id TEXT PRIMARY KEY,
	addr TEXT NOT NULL,
	cert BLOB NOT NULL,
	ek_public BLOB NOT NULL,
	ek_cert BLOB,
	ak_public BLOB NOT NULL,
	policy TEXT NOT NULL,
	log_source TEXT NOT NULL,
	log_pcr INTEGER NOT NULL,
	created INTEGER NOT NULL,
	status TEXT NOT NULL,
	outcome TEXT NOT NULL DEFAULT '',
	history_at INTEGER NOT NULL DEFAULT 0,
	ek_key TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS results (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	agent TEXT NOT NULL,
	time INTEGER NOT NULL,
	result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_agent ON results(agent, id);
CREATE INDEX IF NOT EXISTS results_time ON results(time);
CREATE TABLE IF NOT EXISTS policies (
	name TEXT PRIMARY KEY,
	doc BLOB NOT NULL,
	updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	agent TEXT NOT NULL,
	type TEXT NOT NULL,
	time INTEGER NOT NULL,
	body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_agent ON events(agent, seq);
CREATE TABLE IF NOT EXISTS receivers (
	name TEXT PRIMARY KEY,
	seq INTEGER NOT NULL
);
`

// Columns added to agents after version 2: the outcome of the agent's
// last result (store.Result.Outcome) and when its last history row was
// kept, so that unchanged results are not kept (store.Update). Both or
// neither: Open checks for the first.
const migrate3 = `
BEGIN;
ALTER TABLE agents ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN history_at INTEGER NOT NULL DEFAULT 0;
COMMIT;
`

// Version 4: the EK key of each agent (store.Agent.EKKey) and indexes
// to find the agents of a TPM (FindAgentsByKey).
const migrate4 = `
BEGIN;
ALTER TABLE agents ADD COLUMN ek_key TEXT NOT NULL DEFAULT '';
COMMIT;
`

const indexes4 = `
CREATE INDEX IF NOT EXISTS agents_ek_key ON agents(ek_key);
CREATE INDEX IF NOT EXISTS agents_ek_public ON agents(ek_public);
CREATE INDEX IF NOT EXISTS agents_ak_public ON agents(ak_public);
`

// schemaVersion is the user_version of the current schema.
const schemaVersion = 4

// Open opens (creating it if needed) the database at path. The
// database holds the agents' identities and the attestation history:
// it is created mode 0600 whatever the umask, an existing file open to
// others is tightened to 0600, and SQLite gives its -wal and -shm files
// the database's mode (they are tightened too, if they exist).
func Open(path string) (*DB, error) {
	if err := privateFile(path, true); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// One connection: SQLite has one writer anyway, and a single
	// connection never meets "database is locked".
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: creating schema: %w", path, err)
	}
	var have int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('agents') WHERE name = 'outcome'`).Scan(&have); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: reading schema: %w", path, err)
	}
	if have == 0 {
		if _, err := db.Exec(migrate3); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: %s: upgrading schema: %w", path, err)
		}
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('agents') WHERE name = 'ek_key'`).Scan(&have); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: reading schema: %w", path, err)
	}
	if have == 0 {
		if _, err := db.Exec(migrate4); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: %s: upgrading schema: %w", path, err)
		}
	}
	if _, err := db.Exec(indexes4); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: creating indexes: %w", path, err)
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := privateFile(path+suffix, false); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	return &DB{db: db}, nil
}

// privateFile makes path mode 0600: created (if create) with that mode
// whatever the umask, or tightened when it is open to group or others.
// A missing file is left missing when !create.
func privateFile(path string, create bool) error {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

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

func (d *DB) CreateAgent(ctx context.Context, a *store.Agent, evs ...store.Event) error {
	st, err := json.Marshal(a.Status)
	if err != nil {
		return err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO agents (id, addr, cert, ek_public, ek_cert, ak_public, policy, log_source, log_pcr, created, status, ek_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.Addr, a.CertDER, a.EKPublic, a.EKCert, a.AKPublic, a.Policy, a.LogSource, a.LogPCR, ts(a.Created), string(st), a.EKKey)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint") {
		return fmt.Errorf("agent %q: %w", a.ID, store.ErrExists)
	}
	if err != nil {
		return err
	}
	if err := appendEventsTx(ctx, tx, evs); err != nil {
		return err
	}
	return tx.Commit()
}

const agentCols = `id, addr, cert, ek_public, ek_cert, ak_public, policy, log_source, log_pcr, created, status, ek_key`

func scanAgent(row interface{ Scan(...any) error }) (*store.Agent, error) {
	var a store.Agent
	var created int64
	var st string
	if err := row.Scan(&a.ID, &a.Addr, &a.CertDER, &a.EKPublic, &a.EKCert, &a.AKPublic, &a.Policy, &a.LogSource, &a.LogPCR, &created, &st, &a.EKKey); err != nil {
		return nil, err
	}
	a.Created = fromTS(created)
	if err := json.Unmarshal([]byte(st), &a.Status); err != nil {
		return nil, fmt.Errorf("agent %q: stored status: %w", a.ID, err)
	}
	return &a, nil
}

func (d *DB) GetAgent(ctx context.Context, id string) (*store.Agent, error) {
	a, err := scanAgent(d.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("agent %q: %w", id, store.ErrNotFound)
	}
	return a, err
}

func (d *DB) ListAgents(ctx context.Context) ([]*store.Agent, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+agentCols+` FROM agents ORDER BY id`)
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
	rows, err := d.db.QueryContext(ctx, `SELECT json_extract(status, '$.state'), count(*) FROM agents GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.StateCount
	for rows.Next() {
		var c store.StateCount
		var st sql.NullString
		if err := rows.Scan(&st, &c.Agents); err != nil {
			return nil, err
		}
		c.State = st.String
		out = append(out, c)
	}
	return out, rows.Err()
}

func (d *DB) FindAgentsByKey(ctx context.Context, ekKey string, ekPublic, akPublic []byte) ([]string, error) {
	// Each condition on its own index; "" and nil match nothing.
	rows, err := d.db.QueryContext(ctx, `SELECT id FROM agents WHERE ek_key = ? AND ? != ''
		UNION SELECT id FROM agents WHERE ek_public = ?
		UNION SELECT id FROM agents WHERE ak_public = ? ORDER BY id`, ekKey, ekKey, nonNil(ekPublic), nonNil(akPublic))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// nonNil makes nil a value no blob equals (a NULL: never equal).
func nonNil(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func (d *DB) DeleteAgent(ctx context.Context, id string, evs ...store.Event) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("agent %q: %w", id, store.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM results WHERE agent = ?`, id); err != nil {
		return err
	}
	if err := appendEventsTx(ctx, tx, evs); err != nil {
		return err
	}
	return tx.Commit()
}

func (d *DB) SaveAttestations(ctx context.Context, batch []store.Update) error {
	if len(batch) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	sel, err := tx.PrepareContext(ctx, `SELECT outcome, history_at FROM agents WHERE id = ? AND created = ?`)
	if err != nil {
		return err
	}
	defer sel.Close()
	upd, err := tx.PrepareContext(ctx, `UPDATE agents SET status = ?, outcome = ?, history_at = ? WHERE id = ? AND created = ?`)
	if err != nil {
		return err
	}
	defer upd.Close()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO results (agent, time, result) VALUES (?,?,?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	var evIns *sql.Stmt // prepared only for a batch with events (state changes are rare)
	defer func() {
		if evIns != nil {
			evIns.Close()
		}
	}()
	for _, u := range batch {
		var prev string
		var histAt int64
		err := sel.QueryRowContext(ctx, u.AgentID, ts(u.Created)).Scan(&prev, &histAt)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the agent was removed (or enrolled again) meanwhile
		}
		if err != nil {
			return err
		}
		outcome := u.Result.Outcome()
		at := ts(u.Result.Time)
		keep, heartbeat := store.KeepResult(&u, outcome, prev, histAt, at)
		if keep {
			histAt = at
		}
		st, err := json.Marshal(u.Status)
		if err != nil {
			return err
		}
		if _, err := upd.ExecContext(ctx, string(st), outcome, histAt, u.AgentID, ts(u.Created)); err != nil {
			return err
		}
		if keep {
			res := u.Result
			res.Heartbeat = heartbeat
			r, err := json.Marshal(&res)
			if err != nil {
				return err
			}
			if _, err := ins.ExecContext(ctx, u.AgentID, at, string(r)); err != nil {
				return err
			}
		}
		if len(u.Events) > 0 && evIns == nil {
			if evIns, err = tx.PrepareContext(ctx, insertEvent); err != nil {
				return err
			}
		}
		for _, e := range u.Events {
			if err := appendEvent(ctx, evIns, &e); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

func (d *DB) History(ctx context.Context, id string, limit int) ([]store.Result, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT result FROM results WHERE agent = ? ORDER BY id DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Result
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		var r store.Result
		if err := json.Unmarshal([]byte(s), &r); err != nil {
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
	// One statement, its own transaction: the batch bounds how long it
	// holds the single connection (and SQLite's one writer).
	res, err := d.db.ExecContext(ctx, `DELETE FROM results WHERE id IN
		(SELECT id FROM results WHERE time < ? ORDER BY time, id LIMIT ?)`, ts(before), limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (d *DB) PutPolicy(ctx context.Context, p *store.Policy) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO policies (name, doc, updated) VALUES (?,?,?)
		ON CONFLICT(name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated`, p.Name, p.Doc, ts(p.Updated))
	return err
}

func (d *DB) GetPolicy(ctx context.Context, name string) (*store.Policy, error) {
	p := &store.Policy{Name: name}
	var updated int64
	err := d.db.QueryRowContext(ctx, `SELECT doc, updated FROM policies WHERE name = ?`, name).Scan(&p.Doc, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("policy %q: %w", name, store.ErrNotFound)
	}
	p.Updated = fromTS(updated)
	return p, err
}

func (d *DB) ListPolicies(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT name FROM policies ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

const insertEvent = `INSERT INTO events (id, agent, type, time, body) VALUES (?,?,?,?,?)`

func appendEvent(ctx context.Context, st *sql.Stmt, e *store.Event) error {
	body := e.Body
	if body == nil {
		body = []byte{}
	}
	_, err := st.ExecContext(ctx, e.ID, e.AgentID, e.Type, ts(e.Time), body)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint") {
		return fmt.Errorf("event %q: %w", e.ID, store.ErrExists)
	}
	return err
}

func (d *DB) AppendEvents(ctx context.Context, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := appendEventsTx(ctx, tx, evs); err != nil {
		return err
	}
	return tx.Commit()
}

// appendEventsTx adds events to the outbox in tx, in order.
func appendEventsTx(ctx context.Context, tx *sql.Tx, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, insertEvent)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range evs {
		if err := appendEvent(ctx, st, &evs[i]); err != nil {
			return err
		}
	}
	return nil
}

func scanEvents(rows *sql.Rows) ([]store.Event, error) {
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
	rows, err := d.db.QueryContext(ctx, `SELECT seq, id, agent, type, time, body FROM
		(SELECT * FROM events WHERE agent = ? AND time >= ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`, id, ts(since), limit)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

func (d *DB) AddReceiver(ctx context.Context, name string) (int64, error) {
	if _, err := d.db.ExecContext(ctx, `INSERT INTO receivers (name, seq)
		VALUES (?, COALESCE((SELECT MAX(seq) FROM events), 0)) ON CONFLICT(name) DO NOTHING`, name); err != nil {
		return 0, err
	}
	var seq int64
	err := d.db.QueryRowContext(ctx, `SELECT seq FROM receivers WHERE name = ?`, name).Scan(&seq)
	return seq, err
}

func (d *DB) Undelivered(ctx context.Context, receiver string, limit int) ([]store.Event, error) {
	var mark int64
	err := d.db.QueryRowContext(ctx, `SELECT seq FROM receivers WHERE name = ?`, receiver).Scan(&mark)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("receiver %q: %w", receiver, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	rows, err := d.db.QueryContext(ctx, `SELECT seq, id, agent, type, time, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, mark, limit)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

func (d *DB) MarkDelivered(ctx context.Context, receiver string, seq int64) error {
	res, err := d.db.ExecContext(ctx, `UPDATE receivers SET seq = MAX(seq, ?) WHERE name = ?`, seq, receiver)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("receiver %q: %w", receiver, store.ErrNotFound)
	}
	return nil
}

func (d *DB) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("pruning events: limit %d: %w", limit, store.ErrInvalid)
	}
	// One statement, its own transaction, like PruneHistory. Only events
	// up to the lowest receiver mark go: the rest is undelivered. The
	// scan walks the primary key from the oldest event.
	res, err := d.db.ExecContext(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE time < ?
			AND seq <= COALESCE((SELECT MIN(seq) FROM receivers), 9223372036854775807)
			ORDER BY seq LIMIT ?)`, ts(before), limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
