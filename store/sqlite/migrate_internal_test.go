// SPDX-License-Identifier: Apache-2.0

package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/intactsec/intact/store"
)

// schemaV2 is the schema before the history kept only changes: agents
// without outcome and history_at.
const schemaV2 = `
CREATE TABLE agents (id TEXT PRIMARY KEY, addr TEXT NOT NULL, cert BLOB NOT NULL, ek_public BLOB NOT NULL, ek_cert BLOB,
	ak_public BLOB NOT NULL, policy TEXT NOT NULL, log_source TEXT NOT NULL, log_pcr INTEGER NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, time INTEGER NOT NULL, result TEXT NOT NULL);
CREATE INDEX results_agent ON results(agent, id);
CREATE INDEX results_time ON results(time);
INSERT INTO agents VALUES ('old', '127.0.0.1:9', x'01', x'02', NULL, x'03', 'p', 'intact', 13, 1700000000000000000, '{"state":"trusted","attestations":7}');
INSERT INTO results (agent, time, result) VALUES ('old', 1700000001000000000, '{"agent":"old","time":"2023-11-14T22:13:21Z","state":"trusted","log_offset":3}');
PRAGMA user_version = 2;
`

// A database of the previous schema opens, keeps its agents and history,
// and then keeps only changes and heartbeats.
func TestUpgradeFromV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v2.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(schemaV2); err != nil {
		t.Fatal(err)
	}
	old.Close()
	for i := 0; i < 2; i++ { // the upgrade, then an upgraded database
		db, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		a, err := db.GetAgent(ctx, "old")
		if err != nil || a.Attestations != 7 && i == 0 {
			t.Fatalf("agent after the upgrade: %+v, %v", a, err)
		}
		var batch []store.Update
		for s := 10; s < 20; s++ {
			now := time.Unix(int64(1700000000+100*i+s), 0).UTC()
			batch = append(batch, store.Update{AgentID: "old", Created: a.Created, Heartbeat: time.Hour,
				Status: store.Status{State: store.StateTrusted, LastAttested: now},
				Result: store.Result{AgentID: "old", Time: now, State: store.StateTrusted}})
		}
		if err := db.SaveAttestations(ctx, batch); err != nil {
			t.Fatal(err)
		}
		h, err := db.History(ctx, "old", 100)
		// The first result after the upgrade is a change (no outcome
		// stored before); the others, and those after a reopen, are not.
		if err != nil || len(h) != 2 || h[1].LogOffset != 3 || h[0].Time.Unix() != 1700000010 {
			t.Fatalf("history after the upgrade (open %d): %+v, %v", i, h, err)
		}
		// Version 4: the agent has no EK key, and is found by its EK.
		if ids, err := db.FindAgentsByKey(ctx, "", []byte{2}, nil); err != nil || len(ids) != 1 || ids[0] != "old" {
			t.Fatalf("FindAgentsByKey after the upgrade: %q, %v", ids, err)
		}
		var v int
		if err := db.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
			t.Fatalf("user_version = %d, %v", v, err)
		}
		db.Close()
	}
}
