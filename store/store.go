// SPDX-License-Identifier: Apache-2.0

// Package store is the verifier's state: enrolled agents, their
// attestation progress, runtime policies and attestation history,
// behind the Store interface. Backends live in subpackages (store/sqlite)
// and prove themselves with the conformance suite in store/storetest;
// nothing else imports a database driver.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// Conditions callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid argument")
)

// Agent states.
const (
	StateEnrolled = "enrolled" // enrolled, not yet attested
	StateTrusted  = "trusted"  // the last attestation passed
	StateFailed   = "failed"   // an attestation failed; Reasons say why
	// StateUnreachable: the agent did not answer (connection refused or
	// reset, a timeout, a handshake that broke off): no evidence, which
	// is not a security failure. The next good attestation makes it
	// trusted again; the replay from the stored offset covers what ran
	// meanwhile.
	StateUnreachable = "unreachable"
	// StateGap: the attestations verify, but the machine rebooted after a
	// gap in attestation (Status.Gap): what ran in the gap is unknown.
	// The agent stays in it until an operator acknowledges the gap.
	StateGap = "gap-after-reboot"
)

// Failure kinds.
const (
	KindSecurity    = "security"
	KindOperational = "operational"
)

// Agent is an enrolled agent: how to reach it, what identifies it, and
// where its attestation stands.
type Agent struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`      // host:port of the agent's HTTPS API
	CertDER  []byte `json:"cert"`      // the agent's TLS certificate, pinned at enrollment
	EKPublic []byte `json:"ek_public"` // TPMT_PUBLIC
	EKCert   []byte `json:"ek_cert,omitempty"`
	AKPublic []byte `json:"ak_public"` // TPMT_PUBLIC of the enrolled AK
	// EKKey identifies the TPM whatever encoding of its EK public area
	// an agent reports: the hex SHA-256 of the EK's public key (PKIX
	// DER), set at enrollment (empty for agents enrolled before it was).
	EKKey  string `json:"ek_key,omitempty"`
	Policy string `json:"policy"` // runtime policy name
	// LogSource is the measurement list the agent serves ("intact" or
	// "ima") and LogPCR the PCR that list extends.
	LogSource string    `json:"log_source"`
	LogPCR    int       `json:"log_pcr"`
	Created   time.Time `json:"created"`
	// Lease is set by stores that replicas share (Leaser): the replica
	// that attests the agent and until when.
	Lease Lease `json:"lease"`
	Status
}

// Status is the part of an agent the attestation loop changes.
type Status struct {
	State   string   `json:"state"`
	Reasons []string `json:"reasons,omitempty"`
	// Kind of the failure when State is StateFailed: KindSecurity
	// (evidence did not verify or broke the policy; attestation stops
	// until an operator reactivates the agent) or KindOperational (the
	// agent answered an error, or something that is not the protocol;
	// attestation goes on). Empty in the other states (an unreachable
	// agent is not a failure).
	Kind         string    `json:"kind,omitempty"`
	Progress     Progress  `json:"progress"`
	Attestations int64     `json:"attestations"`
	LastAttested time.Time `json:"last_attested"`
	LastTrusted  time.Time `json:"last_trusted"`
	// LastVerified is the time of the last attestation whose evidence
	// verified (trusted, gap-after-reboot, or a policy failure).
	LastVerified time.Time `json:"last_verified,omitzero"`
	// Gap is a reboot that followed a gap in attestation, until an
	// operator acknowledges it (nil: none).
	Gap *Gap `json:"gap,omitempty"`
}

// Gap is a reboot found after attestation had stopped verifying: the
// previous boot's records after LastVerified were never seen, and a
// reboot (TPM reset) erased their trace from the PCRs.
type Gap struct {
	LastVerified time.Time `json:"last_verified"` // the previous boot's last verified attestation
	Rebooted     time.Time `json:"rebooted"`      // the attestation that found the new boot
}

// Progress is where incremental attestation resumes: the TPM clock of the
// last verified quote, the next measurement-list record to fetch and the
// PCR the verified records replay to.
type Progress struct {
	ResetCount   uint32            `json:"reset_count"`
	RestartCount uint32            `json:"restart_count"`
	Clock        uint64            `json:"clock"`
	HaveClock    bool              `json:"have_clock"`
	LogOffset    int64             `json:"log_offset"`
	LogPCR       map[string][]byte `json:"log_pcr,omitempty"`  // bank name -> running value
	BootChecked  bool              `json:"boot_checked"`       // boot_aggregate checked for this boot
	BootLog      string            `json:"boot_log,omitempty"` // BootLogVerified or BootLogNone, once checked for this boot
}

// Boot event log outcomes (Progress.BootLog).
const (
	BootLogVerified = "verified" // replayed to the quoted PCRs 0-9
	BootLogNone     = "none"     // the agent has no boot event log
	BootLogJudged   = "judged"   // verified, and it meets the agent's measured-boot policy
)

// Result is one attestation outcome, as kept in an agent's history.
type Result struct {
	AgentID   string    `json:"agent"`
	Time      time.Time `json:"time"`
	State     string    `json:"state"`          // trusted, failed, unreachable, gap-after-reboot, enrolled
	Kind      string    `json:"kind,omitempty"` // for failures: security or operational
	Reasons   []string  `json:"reasons,omitempty"`
	LogOffset int64     `json:"log_offset"`
	// Attestations is the agent's count of attestations with this one.
	Attestations int64 `json:"attestations,omitempty"`
	// Heartbeat is set by the store on a result kept although its
	// outcome is the previous kept result's (see Update.Heartbeat).
	Heartbeat bool `json:"heartbeat,omitempty"`
}

// Outcome is what makes a result a change in an agent's history: its
// state, failure kind and reasons, except the reasons of an operational
// failure or of an unreachable agent (their messages carry details such
// as ephemeral ports that differ from one attempt to the next; the latest
// is in the agent's status). Two results with equal outcomes are the
// same outcome.
func (r *Result) Outcome() string {
	o := struct {
		State   string   `json:"s"`
		Kind    string   `json:"k,omitempty"`
		Reasons []string `json:"r,omitempty"`
	}{State: r.State, Kind: r.Kind}
	if r.Kind != KindOperational && r.State != StateUnreachable {
		o.Reasons = r.Reasons
	}
	b, err := json.Marshal(&o)
	if err != nil { // strings only: cannot happen
		return r.State + "\x00" + r.Kind
	}
	return string(b)
}

// Update is one attestation to persist: the agent's new status and its
// result. Created is the agent's enrollment time (Agent.Created): an
// update for an agent removed and enrolled again since is dropped.
//
// The status always replaces the agent's. The result is added to the
// agent's history only if its outcome (Result.Outcome) differs from the
// outcome of the agent's previous result, or, with Heartbeat > 0, if the
// agent's last kept result is at least Heartbeat plus the agent's
// HeartbeatJitter older (or newer: the clock went back); such a result
// is kept with Result.Heartbeat set. With Heartbeat 0 unchanged results
// are never kept. So an agent that stays trusted costs one history row
// per Heartbeat to 5/4 Heartbeat, not one per attestation, and agents
// enrolled together do not write their heartbeats together.
type Update struct {
	AgentID   string
	Created   time.Time
	Status    Status
	Result    Result
	Heartbeat time.Duration
	// Events (state changes, reboots) go to the outbox in the same
	// transaction, and are dropped with the update.
	Events []Event
}

// HeartbeatJitter is what agent id adds to the heartbeat period: a
// fixed duration in [0, period/4) from a hash (FNV-1a, 64 bits) of the
// id, 0 for a period under 4ns. The same agent always gets the same
// jitter (also across restarts and backends); agents enrolled at once,
// whose first results are kept at once, keep their heartbeats at
// different times, and drift further apart with every period.
func HeartbeatJitter(id string, period time.Duration) time.Duration {
	q := period / 4
	if q <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(q))
}

// Event is a notable change of an agent (enrolled, trusted, failed,
// removed, reboot). Events are kept in an outbox, in order, for webhook
// receivers (each receiver has a mark: the last event delivered to it)
// and as the agents' timelines.
type Event struct {
	Seq     int64     `json:"seq"` // assigned by the store, increasing
	ID      string    `json:"id"`  // unique
	AgentID string    `json:"agent"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Body    []byte    `json:"body"` // the notification, delivered as is
}

// StateCount is a number of agents in one state (Status.State), held by
// one replica (Replica: "" when no replica holds a live lease of them, or
// in a store of one verifier).
type StateCount struct {
	State   string
	Replica string
	Agents  int
}

// Policy is a named runtime policy document.
type Policy struct {
	Name    string    `json:"name"`
	Doc     []byte    `json:"doc"`
	Updated time.Time `json:"updated"`
}

// Store is the verifier's storage. Implementations are safe for
// concurrent use.
type Store interface {
	// CreateAgent adds an agent (ErrExists if its ID is taken) and
	// appends evs (its enrollment event) to the outbox, in one
	// transaction: both or neither.
	CreateAgent(ctx context.Context, a *Agent, evs ...Event) error
	// GetAgent returns an agent (ErrNotFound).
	GetAgent(ctx context.Context, id string) (*Agent, error)
	// ListAgents returns every agent, by ID.
	ListAgents(ctx context.Context) ([]*Agent, error)
	// CountAgents returns how many agents are in each state and, in a
	// store replicas share, held by each replica (StateCount.Replica:
	// the holder of a live lease, "" for none), in one aggregate query:
	// no agent is read out. Counts of zero are left out.
	CountAgents(ctx context.Context) ([]StateCount, error)
	// FindAgentsByKey returns the ids, sorted, of the agents with the
	// EK key ekKey (Agent.EKKey; "" matches none), or the EK public area
	// ekPublic, or the AK public area akPublic (nil matches none): the
	// agents of the same TPM.
	FindAgentsByKey(ctx context.Context, ekKey string, ekPublic, akPublic []byte) ([]string, error)
	// DeleteAgent removes an agent and its history (ErrNotFound) and
	// appends evs (its removal event) to the outbox, in one transaction:
	// both or neither.
	DeleteAgent(ctx context.Context, id string, evs ...Event) error
	// SaveAttestations stores a batch of attestations in one
	// transaction: each agent's status and, if it is a change or a
	// heartbeat (see Update), a history entry. Updates for agents that no
	// longer exist, or whose Created differs (enrolled again), are
	// dropped. Whether a result is a change is decided against the stored
	// outcome, also across a reopen.
	SaveAttestations(ctx context.Context, batch []Update) error
	// History returns an agent's latest kept results, newest first, at
	// most limit.
	History(ctx context.Context, id string, limit int) ([]Result, error)
	// PruneHistory deletes at most limit results older than before, the
	// oldest first, in one short transaction, and returns how many it
	// deleted (ErrInvalid if limit < 1). Callers delete a large backlog
	// by calling it again (PruneHistoryBatches), so a writer waits at
	// most one batch.
	PruneHistory(ctx context.Context, before time.Time, limit int) (int, error)
	// PutPolicy creates or replaces a runtime policy.
	PutPolicy(ctx context.Context, p *Policy) error
	// GetPolicy returns a runtime policy (ErrNotFound).
	GetPolicy(ctx context.Context, name string) (*Policy, error)
	// ListPolicies returns the policy names, sorted.
	ListPolicies(ctx context.Context) ([]string, error)

	// AppendEvents adds events to the outbox, in order (ErrExists if an
	// event ID is taken). Events of updates go with SaveAttestations,
	// those of an enrollment or a removal with CreateAgent and
	// DeleteAgent.
	AppendEvents(ctx context.Context, evs []Event) error
	// AgentEvents returns an agent's events at or after since, oldest
	// first: the newest limit of them.
	AgentEvents(ctx context.Context, id string, since time.Time, limit int) ([]Event, error)
	// AddReceiver registers a webhook receiver; a new one's mark is the
	// newest event (it receives the events appended from now on). It
	// returns the receiver's mark.
	AddReceiver(ctx context.Context, name string) (int64, error)
	// Undelivered returns up to limit events after the receiver's mark,
	// in order (ErrNotFound for an unknown receiver).
	Undelivered(ctx context.Context, receiver string, limit int) ([]Event, error)
	// MarkDelivered moves the receiver's mark to seq (never back;
	// ErrNotFound for an unknown receiver).
	MarkDelivered(ctx context.Context, receiver string, seq int64) error
	// PruneEvents deletes at most limit events older than before that
	// every receiver has been delivered, the oldest (lowest Seq) first,
	// in one short transaction, and returns how many it deleted
	// (ErrInvalid if limit < 1). An event a receiver has not been
	// delivered is never deleted, however old. Callers delete a large
	// backlog by calling it again (PruneEventsBatches).
	PruneEvents(ctx context.Context, before time.Time, limit int) (int, error)
	Close() error
}

// PruneHistoryBatches deletes every result older than before from s,
// batch results at a time (PruneHistory), pausing between batches so
// that writers (the attestation results) get the store between them. It
// returns how many results it deleted, and stops early with ctx.
func PruneHistoryBatches(ctx context.Context, s Store, before time.Time, batch int, pause time.Duration) (int64, error) {
	return pruneBatches(ctx, "history", func(limit int) (int, error) { return s.PruneHistory(ctx, before, limit) }, batch, pause)
}

// PruneEventsBatches deletes every event older than before that every
// receiver has been delivered, batch events at a time (PruneEvents),
// pausing between batches like PruneHistoryBatches. It returns how many
// events it deleted, and stops early with ctx.
func PruneEventsBatches(ctx context.Context, s Store, before time.Time, batch int, pause time.Duration) (int64, error) {
	return pruneBatches(ctx, "events", func(limit int) (int, error) { return s.PruneEvents(ctx, before, limit) }, batch, pause)
}

// pruneBatches calls prune(batch) until it deletes fewer than batch,
// pausing between calls.
func pruneBatches(ctx context.Context, what string, prune func(limit int) (int, error), batch int, pause time.Duration) (int64, error) {
	if batch < 1 || pause < 0 {
		return 0, fmt.Errorf("pruning %s in batches of %d with pauses of %v: %w", what, batch, pause, ErrInvalid)
	}
	var total int64
	for {
		n, err := prune(batch)
		total += int64(n)
		if err != nil || n < batch {
			return total, err
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return total, ctx.Err()
			case <-t.C:
			}
		} else if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// KeepResult decides whether a result enters an agent's history, for the
// store backends (see Update): keep it when its outcome (u.Result's
// Outcome, computed once by the caller) differs from the
// previous kept outcome prev, or, as a heartbeat, when the last kept
// result (at histAt, Unix nanoseconds) is at least hb plus the agent's
// HeartbeatJitter older than this one (at), or newer (the clock went
// back).
func KeepResult(u *Update, outcome, prev string, histAt, at int64) (keep, heartbeat bool) {
	if outcome != prev {
		return true, false
	}
	if u.Heartbeat <= 0 {
		return false, false
	}
	since := at - histAt
	keep = since >= (u.Heartbeat+HeartbeatJitter(u.AgentID, u.Heartbeat)).Nanoseconds() || since < 0
	return keep, keep
}
