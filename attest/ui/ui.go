// SPDX-License-Identifier: Apache-2.0

// Package ui is intact-verifier's read-only fleet dashboard: a fleet page
// (counts by state, attestations per second and late agents over the last
// hour, the agents that changed state most recently, search and filters),
// an agent page (timeline, reasons with the record that failed, identity,
// the latest EAR decoded) and a policies page, served from assets embedded
// in the binary under /ui/ on the operator API's TLS listener.
//
// Security: every page and data endpoint needs a session (a login form
// that takes the operator token and sets a Secure, HttpOnly,
// SameSite=Strict cookie) or the token as a bearer header; nothing changes
// state but login and logout, which are POSTs checked for same origin;
// agent-supplied strings are only ever set as text (textContent) by the
// page script; a strict Content-Security-Policy forbids inline script and
// style and every other origin.
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/store"
)

//go:embed assets
var assets embed.FS

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

// Verifier is what the dashboard asks of the verifier beside its store.
type Verifier interface {
	Timeline(ctx context.Context, a *store.Agent) ([]verifier.Notification, error)
	EAR(a *store.Agent, now time.Time) *ear.Result
}

// Store is what the dashboard reads of the verifier's store.
type Store interface {
	GetAgent(ctx context.Context, id string) (*store.Agent, error)
	ListAgents(ctx context.Context) ([]*store.Agent, error)
	History(ctx context.Context, id string, limit int) ([]store.Result, error)
	GetPolicy(ctx context.Context, name string) (*store.Policy, error)
	ListPolicies(ctx context.Context) ([]string, error)
}

// Options configure New.
type Options struct {
	Store    Store
	Verifier Verifier
	Token    string        // the operator API token
	Interval time.Duration // the verifier's attestation interval
	Logger   *slog.Logger
	Now      func() time.Time
	// SessionTTL bounds a login (default 12h).
	SessionTTL time.Duration
	// Sample is the period of the fleet chart's samples (default 10s); the
	// chart keeps an hour of them.
	Sample time.Duration
}

// UI is the dashboard handler; Run samples the fleet for its chart.
type UI struct {
	o      Options
	static http.Handler

	mu       sync.Mutex
	sessions map[string]time.Time // session id -> expiry
	snap     *snapshot
	loading  chan struct{} // closed when the store read under way ends
	loadErr  error
	since    map[string]stateSince // agent id -> state and when it was first seen in it
	series   []Sample
	lastAtt  int64
	lastT    time.Time
}

type stateSince struct {
	state string
	since time.Time
}

// Sample is one point of the fleet chart.
type Sample struct {
	Time       time.Time `json:"t"`
	PerSecond  float64   `json:"attestations_per_s"`
	Late       int       `json:"late"`
	Agents     int       `json:"agents"`
	Trusted    int       `json:"trusted"`
	NotTrusted int       `json:"not_trusted"`
}

type snapshot struct {
	at     time.Time
	agents []*store.Agent
}

// New returns the dashboard. The token must be the operator API's.
func New(o Options) (*UI, error) {
	if len(o.Token) < 16 || o.Store == nil || o.Verifier == nil {
		return nil, errors.New("ui: needs the store, the verifier and the api token")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Sample <= 0 {
		o.Sample = 10 * time.Second
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	return &UI{o: o, static: http.StripPrefix(Prefix+"static/", http.FileServerFS(sub)),
		sessions: map[string]time.Time{}, since: map[string]stateSince{}}, nil
}

// Run samples the fleet every Options.Sample until ctx ends.
func (u *UI) Run(ctx context.Context) {
	t := time.NewTicker(u.o.Sample)
	defer t.Stop()
	u.sample(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			u.sample(ctx)
		}
	}
}

func (u *UI) sample(ctx context.Context) {
	s, err := u.refresh(ctx, 0)
	if err != nil {
		u.o.Logger.Warn("ui: sampling the fleet", "err", err)
		return
	}
	var total int64
	p := Sample{Time: s.at, Agents: len(s.agents)}
	for _, a := range s.agents {
		total += a.Attestations
		if u.late(a, s.at) {
			p.Late++
		}
		if a.State == store.StateTrusted {
			p.Trusted++
		} else {
			p.NotTrusted++
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.lastT.IsZero() && s.at.After(u.lastT) && total >= u.lastAtt {
		p.PerSecond = float64(total-u.lastAtt) / s.at.Sub(u.lastT).Seconds()
	}
	u.lastAtt, u.lastT = total, s.at
	u.series = append(u.series, p)
	if keep := int(time.Hour / u.o.Sample); len(u.series) > keep {
		u.series = append(u.series[:0], u.series[len(u.series)-keep:]...)
	}
}

// late reports whether an agent's attestation is overdue: nothing for
// more than two intervals (plus its timeout) although it is attested.
func (u *UI) late(a *store.Agent, now time.Time) bool {
	if a.State == store.StateFailed && a.Kind == store.KindSecurity {
		return false // attestation stopped on purpose
	}
	last := a.LastAttested
	if last.IsZero() {
		last = a.Created
	}
	return now.Sub(last) > 3*u.o.Interval
}

// snapshotAge is how old a snapshot of the agents a page is served from
// may be: requests of many open pages share one store read.
const snapshotAge = 500 * time.Millisecond

// refresh returns a snapshot of the agents no older than maxAge, and
// tracks when each agent entered its state.
func (u *UI) refresh(ctx context.Context, maxAge time.Duration) (*snapshot, error) {
	now := u.o.Now()
	u.mu.Lock()
	if s := u.snap; s != nil && maxAge > 0 && now.Sub(s.at) < maxAge {
		u.mu.Unlock()
		return s, nil
	}
	// One store read at a time: requests that arrive meanwhile (a page
	// asks for the fleet and the list at once) share its result.
	if wait := u.loading; wait != nil {
		u.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		u.mu.Lock()
		s, err := u.snap, u.loadErr
		u.mu.Unlock()
		if s == nil && err == nil {
			err = errors.New("no snapshot")
		}
		return s, err
	}
	done := make(chan struct{})
	u.loading = done
	u.mu.Unlock()
	s, err := u.load(ctx, now)
	u.mu.Lock()
	u.loading, u.loadErr = nil, err
	u.mu.Unlock()
	close(done)
	return s, err
}

// load reads the agents and tracks when each entered its state.
func (u *UI) load(ctx context.Context, now time.Time) (*snapshot, error) {
	agents, err := u.o.Store.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	s := &snapshot{at: now, agents: agents}
	u.mu.Lock()
	defer u.mu.Unlock()
	seen := make(map[string]bool, len(agents))
	for _, a := range agents {
		seen[a.ID] = true
		if old, ok := u.since[a.ID]; !ok || old.state != a.State {
			since := now
			if !ok { // first sight: the best the store knows
				since = a.Created
				if a.State == store.StateTrusted && !a.LastTrusted.IsZero() {
					since = a.LastTrusted
				}
				if a.State != store.StateTrusted && !a.LastAttested.IsZero() {
					since = a.LastAttested
				}
			}
			u.since[a.ID] = stateSince{a.State, since}
		}
	}
	for id := range u.since {
		if !seen[id] {
			delete(u.since, id)
		}
	}
	u.snap = s
	return s, nil
}

// ServeHTTP serves the dashboard under Prefix.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	path := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	switch {
	case strings.HasPrefix(path, "/static/") && r.Method == http.MethodGet:
		u.static.ServeHTTP(w, r) // code and style only: no data
		return
	case path == "/login" && r.Method == http.MethodPost:
		u.login(w, r)
		return
	case path == "/logout" && r.Method == http.MethodPost:
		u.logout(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	if !u.authorized(r) {
		u.unauthorized(w, r, path, "")
		return
	}
	switch {
	case path == "/" || path == "":
		u.page(w, http.StatusOK)
	case path == "/api/fleet":
		u.apiFleet(w, r)
	case path == "/api/agents":
		u.apiAgents(w, r)
	case strings.HasPrefix(path, "/api/agents/"):
		u.apiAgent(w, r, strings.TrimPrefix(path, "/api/agents/"))
	case path == "/api/policies":
		u.apiPolicies(w, r)
	default:
		http.NotFound(w, r)
	}
}

const cookieName = "intact_ui_session"

func (u *UI) authorized(r *http.Request) bool {
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(got), []byte(u.o.Token)) == 1
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	now := u.o.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	exp, ok := u.sessions[c.Value]
	if ok && now.After(exp) {
		delete(u.sessions, c.Value)
		return false
	}
	return ok
}

func (u *UI) unauthorized(w http.ResponseWriter, r *http.Request, path, msg string) {
	if strings.HasPrefix(path, "/api/") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in first (or send the api token as a bearer header)"})
		return
	}
	b, _ := assets.ReadFile("assets/login.html")
	page := string(b)
	if msg != "" {
		page = strings.Replace(page, "<!--MESSAGE-->", `<p class="error" id="login-error">`+htmlEscape(msg)+`</p>`, 1)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(page))
}

func htmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

// sameOrigin refuses cross-site form posts (login CSRF). A current
// browser says where a request comes from in Sec-Fetch-Site; otherwise
// Origin, when sent, must be this host. Clients that are not browsers
// send neither.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	ou, err := url.Parse(o)
	return err == nil && ou.Host == r.Host
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	tok := r.PostForm.Get("token")
	if subtle.ConstantTimeCompare([]byte(tok), []byte(u.o.Token)) != 1 {
		u.o.Logger.Warn("ui: login refused", "remote", r.RemoteAddr)
		u.unauthorized(w, r, "/", "wrong token")
		return
	}
	var b [32]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := u.o.Now()
	u.mu.Lock()
	for s, exp := range u.sessions {
		if now.After(exp) {
			delete(u.sessions, s)
		}
	}
	u.sessions[id] = now.Add(u.o.SessionTTL)
	u.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: Prefix, MaxAge: int(u.o.SessionTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	u.o.Logger.Info("ui: login", "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "cross-origin logout refused", http.StatusForbidden)
		return
	}
	if c, err := r.Cookie(cookieName); err == nil {
		u.mu.Lock()
		delete(u.sessions, c.Value)
		u.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (u *UI) page(w http.ResponseWriter, code int) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Row is an agent in the fleet list.
type Row struct {
	ID           string     `json:"id"`
	State        string     `json:"state"`
	Kind         string     `json:"kind,omitempty"`
	Policy       string     `json:"policy"`
	Addr         string     `json:"addr"`
	Reason       string     `json:"reason,omitempty"`
	Since        time.Time  `json:"since"`
	LastAttested *time.Time `json:"last_attested,omitempty"`
	Late         bool       `json:"late"`
	Attestations int64      `json:"attestations"`
}

func (u *UI) row(a *store.Agent, now time.Time) Row {
	r := Row{ID: a.ID, State: a.State, Kind: a.Kind, Policy: a.Policy, Addr: a.Addr,
		Attestations: a.Attestations, Late: u.late(a, now)}
	if len(a.Reasons) > 0 {
		r.Reason = a.Reasons[0]
	}
	if !a.LastAttested.IsZero() {
		t := a.LastAttested
		r.LastAttested = &t
	}
	u.mu.Lock()
	r.Since = u.since[a.ID].since
	u.mu.Unlock()
	return r
}

// Fleet is the fleet page's data.
type Fleet struct {
	Time     time.Time      `json:"time"`
	Total    int            `json:"total"`
	Counts   map[string]int `json:"counts"` // by state; "late" counts late agents
	Late     int            `json:"late"`
	Policies []string       `json:"policies"`
	Recent   []Row          `json:"recent"` // most recent state changes first
	Series   []Sample       `json:"series"`
	Interval string         `json:"interval"`
	// RefreshMs is how often the page asks again: half an interval,
	// between 1 and 5 seconds.
	RefreshMs int64 `json:"refresh_ms"`
}

func (u *UI) apiFleet(w http.ResponseWriter, r *http.Request) {
	s, err := u.refresh(r.Context(), snapshotAge)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	f := Fleet{Time: s.at, Total: len(s.agents), Counts: map[string]int{}, Interval: u.o.Interval.String(),
		RefreshMs: min(max(u.o.Interval/2, time.Second), 5*time.Second).Milliseconds()}
	pol := map[string]bool{}
	rows := make([]Row, 0, len(s.agents))
	for _, a := range s.agents {
		f.Counts[a.State]++
		pol[a.Policy] = true
		row := u.row(a, s.at)
		if row.Late {
			f.Late++
		}
		rows = append(rows, row)
	}
	for p := range pol {
		f.Policies = append(f.Policies, p)
	}
	sort.Strings(f.Policies)
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].Since.Equal(rows[j].Since) {
			return rows[i].Since.After(rows[j].Since)
		}
		return rows[i].ID < rows[j].ID
	})
	f.Recent = rows[:min(10, len(rows))]
	u.mu.Lock()
	f.Series = append([]Sample(nil), u.series...)
	u.mu.Unlock()
	writeJSON(w, http.StatusOK, f)
}

// Page is one page of the filtered agent list.
type Page struct {
	Total  int   `json:"total"` // matching the filter
	Offset int   `json:"offset"`
	Limit  int   `json:"limit"`
	Agents []Row `json:"agents"`
}

const maxPage = 200

func (u *UI) apiAgents(w http.ResponseWriter, r *http.Request) {
	s, err := u.refresh(r.Context(), snapshotAge)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	q := r.URL.Query()
	text, state, policy := strings.ToLower(q.Get("q")), q.Get("state"), q.Get("policy")
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > maxPage {
		limit = 50
	}
	offset = max(offset, 0)
	var match []*store.Agent
	for _, a := range s.agents {
		switch {
		case text != "" && !strings.Contains(strings.ToLower(a.ID), text):
		case state == "late" && !u.late(a, s.at):
		case state != "" && state != "late" && a.State != state:
		case policy != "" && a.Policy != policy:
		default:
			match = append(match, a)
		}
	}
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	p := Page{Total: len(match), Offset: offset, Limit: limit, Agents: []Row{}}
	for _, a := range match[min(offset, len(match)):min(offset+limit, len(match))] {
		p.Agents = append(p.Agents, u.row(a, s.at))
	}
	writeJSON(w, http.StatusOK, p)
}

// AgentPage is the agent page's data.
type AgentPage struct {
	Row
	Reasons   []string                `json:"reasons,omitempty"`
	Created   time.Time               `json:"created"`
	Trusted   *time.Time              `json:"last_trusted,omitempty"`
	LogSource string                  `json:"log_source"`
	LogPCR    int                     `json:"log_pcr"`
	LogOffset int64                   `json:"log_offset"`
	EKKey     string                  `json:"ek_key,omitempty"`
	EKPublic  string                  `json:"ek_public"` // hex
	AKPublic  string                  `json:"ak_public"` // hex
	HasEKCert bool                    `json:"has_ek_cert"`
	Timeline  []verifier.Notification `json:"timeline"`
	History   []store.Result          `json:"history"`
	EAR       *ear.Result             `json:"ear"`
}

func (u *UI) apiAgent(w http.ResponseWriter, r *http.Request, id string) {
	a, err := u.o.Store.GetAgent(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such agent"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	now := u.o.Now()
	p := AgentPage{Row: u.row(a, now), Reasons: a.Reasons, Created: a.Created, LogSource: a.LogSource,
		LogPCR: a.LogPCR, LogOffset: a.Progress.LogOffset, EKKey: a.EKKey,
		EKPublic: hexOf(a.EKPublic), AKPublic: hexOf(a.AKPublic), HasEKCert: len(a.EKCert) > 0}
	if !a.LastTrusted.IsZero() {
		t := a.LastTrusted
		p.Trusted = &t
	}
	if p.Timeline, err = u.o.Verifier.Timeline(r.Context(), a); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if p.History, err = u.o.Store.History(r.Context(), a.ID, 50); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	p.EAR = u.o.Verifier.EAR(a, now)
	writeJSON(w, http.StatusOK, p)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// PolicyRow is a policy on the policies page.
type PolicyRow struct {
	Name    string            `json:"name"`
	Agents  int               `json:"agents"`
	Sample  []string          `json:"sample_agents"` // the first few
	Paths   int               `json:"paths"`
	Windows []rtpolicy.Window `json:"open_windows"` // update windows open now (digests left out)
	Error   string            `json:"error,omitempty"`
}

func (u *UI) apiPolicies(w http.ResponseWriter, r *http.Request) {
	names, err := u.o.Store.ListPolicies(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	s, err := u.refresh(r.Context(), snapshotAge)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	users := map[string][]string{}
	for _, a := range s.agents {
		users[a.Policy] = append(users[a.Policy], a.ID)
	}
	now := u.o.Now()
	out := []PolicyRow{}
	for _, n := range names {
		row := PolicyRow{Name: n, Agents: len(users[n]), Windows: []rtpolicy.Window{}}
		sort.Strings(users[n])
		row.Sample = users[n][:min(10, len(users[n]))]
		p, err := u.o.Store.GetPolicy(r.Context(), n)
		if err != nil {
			row.Error = err.Error()
			out = append(out, row)
			continue
		}
		var doc rtpolicy.Policy
		if err := json.Unmarshal(p.Doc, &doc); err != nil {
			row.Error = "the stored policy does not decode: " + err.Error()
		}
		row.Paths = len(doc.Digests)
		for _, win := range doc.Windows {
			if win.Until.After(now) {
				row.Windows = append(row.Windows, rtpolicy.Window{Until: win.Until, Note: win.Note})
			}
		}
		out = append(out, row)
	}
	writeJSON(w, http.StatusOK, out)
}
