// SPDX-License-Identifier: Apache-2.0

package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/store"
)

var _ store.Leaser = (*DB)(nil)

// dbNow is the database's clock in nanoseconds: leases never depend on a
// replica's clock.
const dbNow = `((extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000)`

// Leases are held per replica, not per agent: an agent names its owner
// (agents.lease_owner, written only when the agent changes hands), and
// every lease of a replica lives until its row in replicas says
// (replicas.until), which the replica's lease round renews. So a round
// of a replica that keeps its agents writes one row, whatever their
// number (it renewed every agent's row before: three whole-row copies per
// agent per interval, most of the server's CPU). An agent's lease has
// lapsed when its owner is '' or the owner's row is stale or gone.

// liveOwner is true of an agents row whose owner holds a live lease.
const liveOwner = `EXISTS (SELECT 1 FROM replicas r WHERE r.name = agents.lease_owner AND r.until > ` + dbNow + `)`

func (d *DB) Lease(ctx context.Context, replica string, ttl time.Duration) ([]string, error) {
	var owned []string
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var now int64
		if err := tx.QueryRow(ctx, `SELECT `+dbNow).Scan(&now); err != nil {
			return err
		}
		until := now + ttl.Nanoseconds()
		// The renewal of every lease this replica holds.
		if _, err := tx.Exec(ctx, `INSERT INTO replicas (name, seen, until) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET seen = excluded.seen, until = excluded.until`, replica, now, until); err != nil {
			return err
		}
		var live, total, held int64
		// one scan of agents for both counts
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM replicas WHERE seen > $1), count(*), count(*) FILTER (WHERE lease_owner = $2)
			FROM agents`, now-ttl.Nanoseconds(), replica).Scan(&live, &total, &held); err != nil {
			return err
		}
		share := total
		if live > 1 {
			share = (total + live - 1) / live
		}
		// Rows are locked in id order, as SaveAttestationsAs locks them:
		// in any other order this round and the replica's own writer can
		// deadlock (TestLeaseRoundsAndWriterDoNotDeadlock).
		var err error
		switch {
		case held > share:
			// a replica joined: give the excess back, it lapses now
			// (the highest ids, locked in ascending order: see above)
			_, err = tx.Exec(ctx, `UPDATE agents SET lease_owner = '' WHERE id IN
				(SELECT id FROM agents WHERE id IN
					(SELECT id FROM agents WHERE lease_owner = $1 ORDER BY id DESC LIMIT $2)
				AND lease_owner = $1 ORDER BY id FOR UPDATE)`, replica, held-share)
		case held < share:
			_, err = tx.Exec(ctx, `UPDATE agents SET lease_owner = $1 WHERE id IN
				(SELECT id FROM agents WHERE lease_owner = '' OR NOT `+liveOwner+`
					ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`, replica, share-held)
		}
		if err != nil {
			return err
		}
		// sorted here (byte order, as COLLATE "C"): cheaper than in the
		// server, which has to sort the rows it reads by the index
		rows, err := tx.Query(ctx, `SELECT id FROM agents WHERE lease_owner = $1`, replica)
		if err != nil {
			return err
		}
		owned, err = pgx.CollectRows(rows, pgx.RowTo[string])
		slices.Sort(owned)
		return err
	})
	return owned, err
}

// ClaimAgent takes a free or lapsed lease for replica, only while the
// replica's own lease is live (before its first lease round, the round
// claims the agent instead).
func (d *DB) ClaimAgent(ctx context.Context, replica, id string, ttl time.Duration) (bool, error) {
	tag, err := d.pool.Exec(ctx, `UPDATE agents SET lease_owner = $1
		WHERE id = $2 AND (lease_owner = $1 OR lease_owner = '' OR NOT `+liveOwner+`)
		AND EXISTS (SELECT 1 FROM replicas WHERE name = $1 AND until > `+dbNow+`)`, replica, id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (d *DB) ReleaseLeases(ctx context.Context, replica string) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE agents SET lease_owner = '' WHERE id IN
			(SELECT id FROM agents WHERE lease_owner = $1 ORDER BY id FOR UPDATE)`, replica); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE receivers SET owner = '', owner_until = 0 WHERE owner = $1`, replica); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM replicas WHERE name = $1`, replica)
		return err
	})
}

func (d *DB) SaveAttestationsAs(ctx context.Context, replica string, batch []store.Update) ([]string, error) {
	if replica == "" {
		return nil, store.ErrInvalid
	}
	return d.saveAttestations(ctx, replica, batch)
}

func (d *DB) Replicas(ctx context.Context, since time.Duration) (map[string]int, error) {
	rows, err := d.pool.Query(ctx, `SELECT r.name, CASE WHEN r.until > `+dbNow+`
			THEN (SELECT count(*) FROM agents a WHERE a.lease_owner = r.name) ELSE 0 END
		FROM replicas r WHERE r.seen > `+dbNow+` - $1`, since.Nanoseconds())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var n string
		var c int
		if err := rows.Scan(&n, &c); err != nil {
			return nil, err
		}
		out[n] = c
	}
	return out, rows.Err()
}

func (d *DB) LeaseReceiver(ctx context.Context, replica, receiver string, ttl time.Duration) (bool, error) {
	if replica == "" {
		return false, store.ErrInvalid
	}
	tag, err := d.pool.Exec(ctx, `UPDATE receivers SET owner = $1, owner_until = `+dbNow+` + $3
		WHERE name = $2 AND (owner = $1 OR owner_until < `+dbNow+`)`, replica, receiver, ttl.Nanoseconds())
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var n int
	if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM receivers WHERE name = $1`, receiver).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return false, fmt.Errorf("receiver %q: %w", receiver, store.ErrNotFound)
	}
	return false, nil
}

func (d *DB) MarkDeliveredAs(ctx context.Context, replica, receiver string, seq int64) error {
	tag, err := d.pool.Exec(ctx, `UPDATE receivers SET seq = GREATEST(seq, $1)
		WHERE name = $2 AND owner = $3 AND owner_until > `+dbNow, seq, receiver, replica)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		var n int
		if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM receivers WHERE name = $1`, receiver).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("receiver %q: %w", receiver, store.ErrNotFound)
		}
		return fmt.Errorf("receiver %q, replica %q: %w", receiver, replica, store.ErrLeaseLost)
	}
	return nil
}
