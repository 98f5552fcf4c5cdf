// SPDX-License-Identifier: Apache-2.0

package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/sqlite"
)

// The database and its WAL and shared-memory files are mode 0600
// whatever the umask (they hold the agents' identities and history),
// and an existing database open to others is tightened.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "v.db")
	check := func(when string) {
		t.Helper()
		for _, f := range []string{p, p + "-wal", p + "-shm"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s is %v, want 0600", when, filepath.Base(f), fi.Mode().Perm())
			}
		}
	}
	db, err := sqlite.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutPolicy(context.Background(), &store.Policy{Name: "p", Doc: []byte("{}"), Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	check("created with umask 0")
	db.Close()
	for _, f := range []string{p, p + "-wal", p + "-shm"} {
		os.Chmod(f, 0o666)
	}
	db, err = sqlite.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutPolicy(context.Background(), &store.Policy{Name: "q", Doc: []byte("{}"), Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	check("reopened after chmod 0666")
}
