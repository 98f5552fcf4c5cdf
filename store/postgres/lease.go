// SPDX-License-Identifier: Apache-2.0

package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/store"
)

var _ store.Leaser = (*DB)(nil)

// dbNow is the database's clock in nanoseconds: leases never depend on a
// replica's clock.
const dbNow = `((extract(epoch from clock_timestamp()) * 1000000)::bigint * 1000)`

func (d *DB) Lease(ctx context.Context, replica string, ttl time.Duration) ([]string, error) {
	var owned []string
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var now int64
		if err := tx.QueryRow(ctx, `SELECT `+dbNow).Scan(&now); err != nil {
			return err
		}
		until := now + ttl.Nanoseconds()
		if _, err := tx.Exec(ctx, `INSERT INTO replicas (name, seen) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET seen = excluded.seen`, replica, now); err != nil {
			return err
		}
		var live, total int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM replicas WHERE seen > $1), (SELECT count(*) FROM agents)`,
			now-ttl.Nanoseconds()).Scan(&live, &total); err != nil {
			return err
		}
		share := total
		if live > 1 {
			share = (total + live - 1) / live
		}
		// Rows are locked in id order, as SaveAttestationsAs locks them:
		// in any other order this round and the replica's own writer can
		// deadlock (TestLeaseRoundsAndWriterDoNotDeadlock).
		tag, err := tx.Exec(ctx, `UPDATE agents SET lease_until = $2 WHERE id IN
			(SELECT id FROM agents WHERE lease_owner = $1 ORDER BY id FOR UPDATE)`, replica, until)
		if err != nil {
			return err
		}
		held := tag.RowsAffected()
		switch {
		case held > share:
			// a replica joined: give the excess back, it lapses now
			_, err = tx.Exec(ctx, `UPDATE agents SET lease_owner = '', lease_until = 0 WHERE id IN
				(SELECT id FROM agents WHERE lease_owner = $1 ORDER BY id DESC LIMIT $2 FOR UPDATE)`, replica, held-share)
		case held < share:
			_, err = tx.Exec(ctx, `UPDATE agents SET lease_owner = $1, lease_until = $2 WHERE id IN
				(SELECT id FROM agents WHERE lease_until < $3 ORDER BY lease_until, id LIMIT $4 FOR UPDATE SKIP LOCKED)`,
				replica, until, now, share-held)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id FROM agents WHERE lease_owner = $1 ORDER BY id COLLATE "C"`, replica)
		if err != nil {
			return err
		}
		owned, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return owned, err
}

func (d *DB) ClaimAgent(ctx context.Context, replica, id string, ttl time.Duration) (bool, error) {
	tag, err := d.pool.Exec(ctx, `UPDATE agents SET lease_owner = $1, lease_until = `+dbNow+` + $3
		WHERE id = $2 AND (lease_owner = $1 OR lease_until < `+dbNow+`)`, replica, id, ttl.Nanoseconds())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (d *DB) ReleaseLeases(ctx context.Context, replica string) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE agents SET lease_owner = '', lease_until = 0 WHERE id IN
			(SELECT id FROM agents WHERE lease_owner = $1 ORDER BY id FOR UPDATE)`, replica); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM replicas WHERE name = $1`, replica)
		return err
	})
}

func (d *DB) SaveAttestationsAs(ctx context.Context, replica string, batch []store.Update) error {
	if replica == "" {
		return store.ErrInvalid
	}
	return d.saveAttestations(ctx, replica, batch)
}

func (d *DB) Replicas(ctx context.Context, since time.Duration) (map[string]int, error) {
	rows, err := d.pool.Query(ctx, `SELECT r.name, (SELECT count(*) FROM agents a WHERE a.lease_owner = r.name AND a.lease_until > `+dbNow+`)
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
