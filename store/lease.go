// SPDX-License-Identifier: Apache-2.0

package store

import (
	"context"
	"errors"
	"time"
)

// Leaser is implemented by stores that several verifier replicas share
// (store/postgres). Each agent is attested by the one replica that holds
// its lease; leases are renewed every fraction of an interval and taken
// over when they lapse, so a replica that dies loses its agents to the
// others. Times are the database's clock, never a replica's.
type Leaser interface {
	DeliveryLeaser
	// Lease is one round of a replica's lease loop: it records the
	// replica as alive, renews the leases it holds for ttl, gives up
	// those beyond its fair share (the agents divided by the replicas
	// seen within the last ttl, rounded up), claims lapsed or free ones
	// up to that share, and returns the ids of the agents it now holds,
	// sorted. A replica must call it more often than every ttl.
	Lease(ctx context.Context, replica string, ttl time.Duration) ([]string, error)
	// ClaimAgent takes the lease of agent id for replica if it is free
	// or lapsed (a new enrollment), and reports whether it did.
	ClaimAgent(ctx context.Context, replica, id string, ttl time.Duration) (bool, error)
	// ReleaseLeases gives up every lease of replica, its agents' and its
	// webhook receivers' (a clean shutdown: the others take them at
	// once), and forgets the replica.
	ReleaseLeases(ctx context.Context, replica string) error
	// SaveAttestationsAs is SaveAttestations fenced by the lease: the
	// updates (and their events) of agents whose lease replica does not
	// hold at commit time are dropped, so a replica that lost a lease
	// (paused, partitioned) can never write over its new owner. It
	// returns the ids of the agents whose updates it dropped (each once):
	// the caller's view of them is no longer what is stored.
	SaveAttestationsAs(ctx context.Context, replica string, batch []Update) (dropped []string, err error)
	// Replicas returns the replicas seen within the last since, with the
	// number of leases each holds.
	Replicas(ctx context.Context, since time.Duration) (map[string]int, error)
}

// Lease is who attests an agent, in a store shared by replicas (zero in
// a store of one verifier).
type Lease struct {
	Replica string    `json:"replica,omitempty"`
	Until   time.Time `json:"until,omitempty"`
}

// DeliveryLeaser is implemented by stores replicas share: one replica at
// a time delivers the event outbox to a webhook receiver, the holder of
// the receiver's delivery lease (times are the database's clock).
type DeliveryLeaser interface {
	// LeaseReceiver takes the delivery lease of receiver for replica if
	// it is free, lapsed or already replica's, for ttl from now, and
	// reports whether replica holds it.
	LeaseReceiver(ctx context.Context, replica, receiver string, ttl time.Duration) (bool, error)
	// MarkDeliveredAs is MarkDelivered fenced by that lease:
	// ErrLeaseLost, and the mark unchanged, unless replica holds it.
	MarkDeliveredAs(ctx context.Context, replica, receiver string, seq int64) error
}

// ErrLeaseLost: a write fenced by a lease the writer does not hold (any
// more).
var ErrLeaseLost = errors.New("lease not held")
