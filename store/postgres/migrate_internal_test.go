// SPDX-License-Identifier: Apache-2.0

package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intactsec/intact/internal/pgtest"
)

// A database at schema version 2 (per-agent leases) is migrated to the
// current version in place: its agents keep their data and their owner,
// the leases held at the upgrade lapse, and the next lease round of a
// replica claims them again.
func TestUpgradeFromV2(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE intact_schema (version INTEGER NOT NULL); INSERT INTO intact_schema VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := conn.Exec(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO agents (id, addr, cert, ek_public, ak_public, policy, log_source, log_pcr, created, status, lease_owner, lease_until)
		VALUES ('a1', '127.0.0.1:1', '\x01', '\x02', '\x03', 'p', 'intact', 13, 1000, '{"state":"trusted","attestations":5}', 'old', 9223372036854775807);
		INSERT INTO replicas (name, seen) VALUES ('old', 1)`); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := conn.QueryRow(ctx, `SELECT version FROM intact_schema`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	a, err := db.GetAgent(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "trusted" || a.Attestations != 5 || a.Lease.Replica != "old" || !a.Lease.Until.IsZero() {
		t.Fatalf("after the upgrade: %+v", a)
	}
	ids, err := db.Lease(ctx, "new", 5*time.Second)
	if err != nil || len(ids) != 1 || ids[0] != "a1" {
		t.Fatalf("the first round after the upgrade holds %v (%v), want a1", ids, err)
	}
}
