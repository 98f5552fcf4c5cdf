// SPDX-License-Identifier: Apache-2.0

package postgres_test

import (
	"context"
	"testing"

	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/postgres"
	"github.com/intactsec/intact/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The storage conformance suite, unchanged, against a real PostgreSQL
// server the test started.
func TestConformance(t *testing.T) {
	dsns := map[store.Store]string{}
	open := func(t *testing.T) store.Store {
		dsn := pgtest.NewDB(t)
		db, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		dsns[db] = dsn
		return db
	}
	reopen := func(t *testing.T, s store.Store) store.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := postgres.Open(context.Background(), dsns[s], postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		dsns[db] = dsns[s]
		return db
	}
	storetest.Run(t, open, reopen)
}
