// SPDX-License-Identifier: Apache-2.0

package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
	"github.com/intactsec/intact/store/storetest"
)

func TestConformance(t *testing.T) {
	paths := map[store.Store]string{}
	open := func(t *testing.T) store.Store {
		p := filepath.Join(t.TempDir(), "v.db")
		db, err := sqlite.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		paths[db] = p
		return db
	}
	reopen := func(t *testing.T, s store.Store) store.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := sqlite.Open(paths[s])
		if err != nil {
			t.Fatal(err)
		}
		paths[db] = paths[s] // reopened again
		return db
	}
	storetest.Run(t, open, reopen)
}
