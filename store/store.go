// Package store is the verifier's state: enrolled agents, their
// attestation progress, runtime policies and attestation history,
// behind the Store interface. Backends live in subpackages (store/sqlite)
// and prove themselves with the conformance suite in store/storetest;
// nothing else imports a database driver.
package store

import (
	"context"
	"errors"
	"time"
)

// Conditions callers branch on.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Agent states.
const (
	StateEnrolled = "enrolled" // enrolled, not yet attested
	StateTrusted  = "trusted"  // the last attestation passed
	StateFailed   = "failed"   // an attestation failed; Reasons say why
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
	Policy   string `json:"policy"`    // runtime policy name
	// LogSource is the measurement list the agent serves ("intact" or
	// "ima") and LogPCR the PCR that list extends.
	LogSource string    `json:"log_source"`
	LogPCR    int       `json:"log_pcr"`
	Created   time.Time `json:"created"`
	Status
}

// Status is the part of an agent the attestation loop changes.
type Status struct {
	State   string   `json:"state"`
	Reasons []string `json:"reasons,omitempty"`
	// Kind of the failure when State is StateFailed: KindSecurity
	// (evidence did not verify or broke the policy; attestation stops
	// until the agent is enrolled again) or KindOperational (the agent
	// could not be reached or answered an error; attestation goes on).
	Kind         string    `json:"kind,omitempty"`
	Progress     Progress  `json:"progress"`
	Attestations int64     `json:"attestations"`
	LastAttested time.Time `json:"last_attested"`
	LastTrusted  time.Time `json:"last_trusted"`
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
)

// Result is one attestation outcome.
type Result struct {
	AgentID   string    `json:"agent"`
	Time      time.Time `json:"time"`
	State     string    `json:"state"`          // trusted or failed
	Kind      string    `json:"kind,omitempty"` // for failures: security or operational
	Reasons   []string  `json:"reasons,omitempty"`
	LogOffset int64     `json:"log_offset"`
}

// Update is one attestation to persist: the agent's new status and the
// result to append to its history. Created is the agent's enrollment time
// (Agent.Created): an update for an agent removed and enrolled again
// since is dropped.
type Update struct {
	AgentID string
	Created time.Time
	Status  Status
	Result  Result
	// Events (state changes, reboots) go to the outbox in the same
	// transaction, and are dropped with the update.
	Events []Event
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

// Policy is a named runtime policy document.
type Policy struct {
	Name    string    `json:"name"`
	Doc     []byte    `json:"doc"`
	Updated time.Time `json:"updated"`
}

// Store is the verifier's storage. Implementations are safe for
// concurrent use.
type Store interface {
	// CreateAgent adds an agent (ErrExists if its ID is taken).
	CreateAgent(ctx context.Context, a *Agent) error
	// GetAgent returns an agent (ErrNotFound).
	GetAgent(ctx context.Context, id string) (*Agent, error)
	// ListAgents returns every agent, by ID.
	ListAgents(ctx context.Context) ([]*Agent, error)
	// DeleteAgent removes an agent and its history (ErrNotFound).
	DeleteAgent(ctx context.Context, id string) error
	// SaveAttestations stores a batch of attestations in one
	// transaction: each agent's status and a history entry. Updates for
	// agents that no longer exist, or whose Created differs (enrolled
	// again), are dropped.
	SaveAttestations(ctx context.Context, batch []Update) error
	// History returns an agent's latest results, newest first, at most
	// limit.
	History(ctx context.Context, id string, limit int) ([]Result, error)
	// PruneHistory deletes results older than before.
	PruneHistory(ctx context.Context, before time.Time) error
	// PutPolicy creates or replaces a runtime policy.
	PutPolicy(ctx context.Context, p *Policy) error
	// GetPolicy returns a runtime policy (ErrNotFound).
	GetPolicy(ctx context.Context, name string) (*Policy, error)
	// ListPolicies returns the policy names, sorted.
	ListPolicies(ctx context.Context) ([]string, error)

	// AppendEvents adds events to the outbox, in order (ErrExists if an
	// event ID is taken). Events of updates go with SaveAttestations.
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
	// PruneEvents deletes events older than before that every receiver
	// has been delivered.
	PruneEvents(ctx context.Context, before time.Time) error
	Close() error
}
