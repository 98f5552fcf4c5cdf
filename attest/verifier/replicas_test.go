// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ekcert"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/pgtest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/store"
	"github.com/intactsec/intact/store/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// replica is one verifier replica on a PostgreSQL database, with its API.
type replica struct {
	name string
	db   *postgres.DB
	v    *verifier.Verifier
	api  *httptest.Server
	stop func() // stops it (SIGTERM: its leases given up at once)
}

const replicaToken = "replica-test-token-0123456789"

func startReplica(t *testing.T, dsn, name string, allow *ekcert.Allowlist) *replica {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(verifier.Options{Store: db, Leases: db, Replica: name, Interval: interval, Timeout: 20 * time.Second,
		FlushEvery: 20 * time.Millisecond, ClientCert: verifierCert(t),
		EKTrust: func() (*ekcert.Trust, error) { return &ekcert.Trust{Allow: allow}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	h, err := verifier.NewAPI(v, replicaToken)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { v.Run(rctx); close(done) }()
	r := &replica{name: name, db: db, v: v, api: httptest.NewServer(h)}
	var once sync.Once
	r.stop = func() { once.Do(func() { r.api.Close(); cancel(); <-done; db.Close() }) }
	t.Cleanup(r.stop)
	return r
}

// post sends POST path to the replica's API and returns the status and body.
func (r *replica) post(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.api.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+replicaToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Two replicas on one PostgreSQL database (issue 17 item 2): an agent's
// reboot after a gap is acknowledged only on the replica that holds its
// lease (its runner clears the gap); the other answers 409 naming that
// replica, and the agent stays gap-after-reboot. A security failure can
// be reactivated on either replica: the write does not depend on the
// lease (no runner writes a stopped agent), and the holder starts
// attesting it again. A second failure stays failed when its replica
// stops and the other takes its lease. On the old code the 409 named no
// replica.
func TestReplicasAckOnHolder(t *testing.T) {
	dsn := pgtest.NewDB(t)
	a := newTestAgent(t, nil)
	dir := t.TempDir()
	ok1, evil, evil2 := filepath.Join(dir, "ok1"), filepath.Join(dir, "evil"), filepath.Join(dir, "evil2")
	a.measure(ok1)
	allow := &ekcert.Allowlist{}
	if err := allow.Add(a.sw.EKHash(t), "test"); err != nil {
		t.Fatal(err)
	}
	r1 := startReplica(t, dsn, "r1", allow)
	r2 := startReplica(t, dsn, "r2", allow)
	ctx := context.Background()
	if _, err := r1.v.PutPolicy(ctx, "p", policyFor(ok1)); err != nil {
		t.Fatal(err)
	}
	if _, err := r1.v.Enroll(ctx, verifier.EnrollRequest{ID: "g", Addr: a.addr(), Policy: "p"}); err != nil {
		t.Fatal(err)
	}
	look, err := postgres.Open(ctx, dsn, postgres.Options{}) // the operator's view, whichever replica stops
	if err != nil {
		t.Fatal(err)
	}
	defer look.Close()
	wait := func(what string, cond func(*store.Agent) bool) *store.Agent {
		t.Helper()
		var got *store.Agent
		var err error
		if !testenv.Until(20*time.Second, func() bool {
			got, err = look.GetAgent(ctx, "g")
			return err == nil && cond(got)
		}) {
			t.Fatalf("agent not %s: %+v (%v)", what, got, err)
		}
		return got
	}
	wait("trusted", state(store.StateTrusted))
	byName := map[string]*replica{r1.name: r1, r2.name: r2}
	// leased returns the replica holding the agent's lease, with at least
	// half a lease time to live (a loaded database may let a lease lapse
	// and move: the test follows it), and the other one.
	leased := func() (holder, other *replica) {
		t.Helper()
		x := wait("leased", func(x *store.Agent) bool {
			return byName[x.Lease.Replica] != nil && time.Until(x.Lease.Until) > 500*time.Millisecond
		})
		if x.Lease.Replica == r1.name {
			return r1, r2
		}
		return r2, r1
	}

	// A gap: the agent down, the machine rebooted, the agent back.
	a.down()
	wait("unreachable", state(store.StateUnreachable))
	a.reboot()
	a.up()
	got := wait("gap-after-reboot", state(store.StateGap))

	// Acknowledged on the replica without the lease: 409 naming the holder.
	holder, other := leased()
	code, body := other.post(t, "/v1/agents/g/ack")
	if code != http.StatusConflict || !strings.Contains(body, `replica \"`+holder.name+`\"`) {
		t.Fatalf("ack on the replica without the lease: %d %s, want 409 naming %s", code, body, holder.name)
	}
	t.Logf("ack on %s: %d %s", other.name, code, strings.TrimSpace(body))
	err = other.v.Acknowledge(ctx, "g")
	var nh *verifier.NotHolderError
	if !errors.As(err, &nh) || nh.Replica == other.name {
		t.Fatalf("Acknowledge on the replica without the lease: %v", err)
	}
	n := got.Attestations
	got = wait("attested twice more", func(x *store.Agent) bool { return x.Attestations >= n+2 })
	if got.State != store.StateGap {
		t.Fatalf("the gap was cleared by an ack on the replica without the lease: %+v", got.Status)
	}
	// On the holder (the one the 409 names, should the lease have moved
	// meanwhile): acknowledged, trusted.
	holder, _ = leased()
	for tries := 0; ; tries++ {
		code, body := holder.post(t, "/v1/agents/g/ack")
		if code == http.StatusAccepted {
			break
		}
		if tries == 3 || code != http.StatusConflict {
			t.Fatalf("ack on the holder %s: %d %s", holder.name, code, body)
		}
		holder, _ = leased()
	}
	wait("trusted after the ack", state(store.StateTrusted))

	// A security failure: ack refused on the holder (attestation
	// stopped); reactivated on the other replica, attested again by the
	// holder.
	a.measure(evil)
	failed := wait("failed", state(store.StateFailed))
	if failed.Kind != store.KindSecurity {
		t.Fatalf("tampered: %+v", failed.Status)
	}
	holder, other = leased()
	if code, body := holder.post(t, "/v1/agents/g/ack"); code != http.StatusConflict || !strings.Contains(body, "reactivate") {
		t.Fatalf("ack of a failed agent: %d %s", code, body)
	}
	if code, body := other.post(t, "/v1/agents/g/reactivate"); code != http.StatusOK {
		t.Fatalf("reactivate on the replica without the lease: %d %s", code, body)
	}
	got = wait("attested again after the reactivation", func(x *store.Agent) bool {
		return x.State == store.StateTrusted && x.Attestations > failed.Attestations
	})
	t.Logf("attested again by %s after the reactivation on %s", got.Lease.Replica, other.name)

	// Failed again; its replica stops: the other takes the lease and
	// does not attest it (failed never clears by itself).
	a.measure(evil2)
	failed = wait("failed again", func(x *store.Agent) bool { return x.State == store.StateFailed && x.Attestations > got.Attestations })
	holder, other = leased()
	holder.stop()
	got = wait("leased by "+other.name, func(x *store.Agent) bool {
		return x.Lease.Replica == other.name && x.Lease.Until.After(time.Now())
	})
	time.Sleep(5 * interval) // nothing may happen: time is the thing under test
	got, err = look.GetAgent(ctx, "g")
	if err != nil || got.State != store.StateFailed || got.Kind != store.KindSecurity || got.Attestations != failed.Attestations {
		t.Fatalf("after the takeover by %s: %+v, %v: want failed (security) after %d attestations", other.name, got, err, failed.Attestations)
	}
}
