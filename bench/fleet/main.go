// SPDX-License-Identifier: Apache-2.0

// Command fleet measures how many agents one intact-verifier attests at
// its interval: it plays N simulated agents (package sim: intact's agent
// handler over a software TPM with an ECDSA P-256 AK and a growing
// measurement list, each on its own loopback TLS listener with its own
// pinned certificate), enrolls them through the verifier's operator API
// (credential activation against each software EK), and ramps N, holding
// each step for a bounded time.
//
//	go run ./bench/fleet [-steps 500,1000,2000,3000,5000,7000] [-measure 30s] [-limit 30m]
//	go run ./bench/fleet -store both -replicas 2 [-pg-dsn-file FILE] ...
//
// -store picks the verifier's database: sqlite (the default), postgres,
// or both: SQLite, then PostgreSQL with one replica, then (with -replicas
// above 1) PostgreSQL with -replicas, one after the other in the same
// run with the same steps, each with a fresh fleet. On PostgreSQL,
// -replicas verifiers share the database (leases); the database is a
// fresh one on a server this run starts (as root: run as the postgres
// user, fsync on) unless -pg-dsn-file names one. The verifier CPU is
// then all replicas' together, and the server's CPU (postmaster, its
// live and exited children) is reported separately per attestation. The
// run ends with a summary: per ramp, the largest fleet that held and
// the CPU per attestation (verifiers plus server) at the largest N every
// ramp measured, with its ratio to SQLite's. -out FILE writes all of it
// (Markdown) to a file as well.
//
// By default the verifier is the real `intact-verifier serve` binary
// (built into a temporary directory unless -verifier names one), a child
// process whose CPU time is read from /proc/PID/schedstat; the load
// generator is this process (getrusage). Both share this machine's
// cores. With -inprocess the verifier runs in this process (for
// -cpuprofile); its CPU is then not reported separately.
//
// For each step it prints: attestations/s achieved and expected (N per
// interval), the p50/p99 lateness of attestation rounds (the time between
// two quotes of one agent, less the interval), the verifier's and the
// generator's CPU per attestation, the database's size, and whether the
// interval held: at least 97% of the expected rate, p99 lateness under a
// quarter of the interval, every agent trusted. It stops after the first
// step that does not hold and prints the largest N that held.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/bench/fleet/sim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: error:", err)
		os.Exit(1)
	}
}

type config struct {
	steps     []int
	interval  time.Duration
	measure   time.Duration
	settle    time.Duration // wait for every agent to be trusted
	grow      time.Duration
	initial   int
	enrollers int
	bin       string
	inprocess bool
	profile   string
	keep      bool
	limit     time.Duration // the whole run
	store     string        // sqlite, postgres or both
	replicas  int           // verifiers sharing the PostgreSQL database
	dsnFile   string        // an existing PostgreSQL database (else one is started)
	out       string        // write the tables (Markdown) to this file too
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	steps := fs.String("steps", "500,1000,2000,3000,5000,7000", "agent counts to ramp through")
	var c config
	fs.DurationVar(&c.interval, "interval", 2*time.Second, "verifier attestation interval")
	fs.DurationVar(&c.measure, "measure", 30*time.Second, "measurement window per step")
	fs.DurationVar(&c.settle, "settle", 90*time.Second, "at most this long for every agent to be trusted after enrollment")
	fs.DurationVar(&c.grow, "grow", 6*time.Second, "each agent measures one more file this often")
	fs.IntVar(&c.initial, "initial", 20, "records in each agent's list (after its boot_aggregate) at start")
	fs.IntVar(&c.enrollers, "enrollers", 4, "parallel enrollments")
	fs.StringVar(&c.bin, "verifier", "", "intact-verifier binary (default: go build ./cmd/intact-verifier)")
	fs.BoolVar(&c.inprocess, "inprocess", false, "run the verifier in this process (no separate CPU figures)")
	fs.StringVar(&c.profile, "cpuprofile", "", "write a CPU profile of the last step to FILE (with -inprocess: verifier and generator)")
	fs.BoolVar(&c.keep, "keep", false, "keep the verifier's state directory")
	fs.DurationVar(&c.limit, "limit", 30*time.Minute, "stop the whole run after this long")
	fs.StringVar(&c.store, "store", "sqlite", "the verifier's store: sqlite, postgres, or both (one after the other, in this run)")
	fs.IntVar(&c.replicas, "replicas", 1, "verifier replicas sharing the PostgreSQL database")
	fs.StringVar(&c.out, "out", "", "also write the tables and the summary (Markdown) to `FILE`")
	fs.StringVar(&c.dsnFile, "pg-dsn-file", "", "`FILE` holding the connection string of an empty PostgreSQL database (default: start a server, needs root and the postgresql package)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || n > 9000 {
			return fmt.Errorf("-steps: %q: want counts of 1-9000 (file descriptors: two per agent here)", s)
		}
		if len(c.steps) > 0 && n <= c.steps[len(c.steps)-1] {
			return fmt.Errorf("-steps must increase")
		}
		c.steps = append(c.steps, n)
	}
	if c.interval < 100*time.Millisecond || c.measure < c.interval {
		return errors.New("-interval at least 100ms and -measure at least one interval")
	}
	if c.store == "sqlite" && c.replicas != 1 {
		return errors.New("-replicas needs -store postgres or both (replicas share a PostgreSQL database)")
	}
	if c.replicas < 1 || c.replicas > 8 {
		return errors.New("-replicas: 1 to 8")
	}
	var runs []storeRun
	switch c.store {
	case "sqlite":
		runs = []storeRun{{"sqlite", 1}}
	case "postgres":
		runs = []storeRun{{"postgres", c.replicas}}
	case "both":
		// SQLite, then PostgreSQL with one replica (the issue's
		// comparison), then with -replicas if more than one.
		runs = []storeRun{{"sqlite", 1}, {"postgres", 1}}
		if c.replicas > 1 {
			runs = append(runs, storeRun{"postgres", c.replicas})
		}
	default:
		return fmt.Errorf("-store %q: sqlite, postgres or both", c.store)
	}
	if c.inprocess && c.store != "sqlite" {
		return errors.New("-inprocess runs SQLite only")
	}
	if !c.inprocess && c.bin == "" {
		dir, err := os.MkdirTemp("", "fleet-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.bin = filepath.Join(dir, "intact-verifier")
		if out, err := exec.Command("go", "build", "-o", c.bin, "./cmd/intact-verifier").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/intact-verifier: %v\n%s", err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.limit)
	defer cancel()
	// Everything printed goes to stdout and, with -out, to the file.
	var md strings.Builder
	out := io.MultiWriter(stdout, &md)
	host, _ := os.Hostname()
	fmt.Fprintf(out, "fleet: %s, %d cpus, interval %v, window %v, one record per agent every %v; verifier: %s\n",
		host, numCPU(), c.interval, c.measure, c.grow, map[bool]string{true: "in-process", false: "intact-verifier serve (child)"}[c.inprocess])
	fmt.Fprintf(out, "fleet: started %s, commit %s, load average %s\n", time.Now().UTC().Format(time.RFC3339), commit(), loadavg())
	var done []*storeResult
	var runErr error
	for _, sr := range runs {
		res, err := runStore(ctx, c, sr, out, stderr)
		if res != nil {
			done = append(done, res)
		}
		if err != nil {
			runErr = fmt.Errorf("%s: %w", sr, err)
			break
		}
	}
	fmt.Fprintf(out, "\nfleet: ended %s, load average %s\n", time.Now().UTC().Format(time.RFC3339), loadavg())
	if n := retries.Load(); n > 0 {
		fmt.Fprintf(out, "enrollments tried again after a 502: %d\n", n)
	}
	summary(out, done, c.interval)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(md.String()), 0o644); err != nil {
			return errors.Join(runErr, err)
		}
	}
	return runErr
}

// storeRun is one ramp: a store and its number of verifier replicas.
type storeRun struct {
	store    string
	replicas int
}

func (s storeRun) String() string {
	if s.store == "sqlite" {
		return "SQLite, 1 verifier"
	}
	return fmt.Sprintf("PostgreSQL, %d replica%s", s.replicas, map[bool]string{true: "s"}[s.replicas > 1])
}

// storeResult is one ramp's steps.
type storeResult struct {
	run   storeRun
	steps []*result
	best  int // the largest N that held
}

// commit is the source's git revision (or "unknown").
func commit() string {
	b, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(b))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " (modified)"
	}
	return rev
}

// loadavg is the machine's 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// summary prints, for each ramp, the largest fleet that held and the CPU
// per attestation (verifier processes plus database server), compared at
// the largest N every ramp measured, with each one's ratio to SQLite's.
func summary(w io.Writer, done []*storeResult, interval time.Duration) {
	if len(done) == 0 {
		return
	}
	common := 0 // the largest N every ramp has a row for
	for i, d := range done {
		m := 0
		for _, r := range d.steps {
			m = max(m, r.n)
		}
		if i == 0 || m < common {
			common = m
		}
	}
	at := func(d *storeResult) *result {
		for _, r := range d.steps {
			if r.n == common {
				return r
			}
		}
		return nil
	}
	var base time.Duration
	for _, d := range done {
		if d.run.store == "sqlite" {
			if r := at(d); r != nil && r.haveVer {
				base = r.verCPU
			}
		}
	}
	fmt.Fprintf(w, "\n## summary: largest fleet at a %v interval, CPU per attestation at %d agents\n\n", interval, common)
	fmt.Fprintf(w, "CPU per attestation = the verifier process(es) + the database server's processes (SQLite's database is inside the verifier). Ratio: to SQLite's at the same N.\n\n")
	fmt.Fprintln(w, "| store | largest N held | N compared | held there | verifier CPU/attest | db server CPU/attest | total CPU/attest | ratio to SQLite |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, d := range done {
		r := at(d)
		if r == nil {
			fmt.Fprintf(w, "| %s | %d | %d | n/a | n/a | n/a | n/a | n/a |\n", d.run, d.best, common)
			continue
		}
		ver, db, tot, ratio := "n/a", "n/a", "n/a", "n/a"
		if r.haveVer {
			ver = fmt.Sprintf("%d µs", r.verCPU.Microseconds())
			total := r.verCPU
			switch {
			case d.run.store == "sqlite":
				db = "(in the verifier)"
			case r.haveDB:
				db = fmt.Sprintf("%d µs", r.dbCPU.Microseconds())
				total += r.dbCPU
			default:
				total = -1
			}
			if total >= 0 {
				tot = fmt.Sprintf("**%d µs**", total.Microseconds())
				if base > 0 {
					ratio = fmt.Sprintf("**%.2f**", float64(total)/float64(base))
				}
			}
		}
		held := "yes"
		if !r.held {
			held = "no: " + r.why
		}
		fmt.Fprintf(w, "| %s | **%d** | %d | %s | %s | %s | %s | %s |\n", d.run, d.best, common, held, ver, db, tot, ratio)
	}
	// Every N that SQLite and another ramp measured: total CPU per
	// attestation and the ratio (smaller N carry more fixed overhead).
	var sq *storeResult
	for _, d := range done {
		if d.run.store == "sqlite" {
			sq = d
		}
	}
	if sq == nil || len(done) < 2 {
		return
	}
	fmt.Fprintf(w, "\nby step (total CPU per attestation; ratio to SQLite):\n\n| agents |")
	for _, d := range done {
		fmt.Fprintf(w, " %s |", d.run)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(done)))
	total := func(d *storeResult, n int) (time.Duration, bool) {
		for _, r := range d.steps {
			if r.n == n && r.haveVer && (d.run.store == "sqlite" || r.haveDB) {
				return r.verCPU + r.dbCPU, true
			}
		}
		return 0, false
	}
	for _, r := range sq.steps {
		b, ok := total(sq, r.n)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| %d |", r.n)
		for _, d := range done {
			t, ok := total(d, r.n)
			switch {
			case !ok:
				fmt.Fprintf(w, " n/a |")
			case d == sq:
				fmt.Fprintf(w, " %d µs |", t.Microseconds())
			default:
				fmt.Fprintf(w, " %d µs (%.2f) |", t.Microseconds(), float64(t)/float64(b))
			}
		}
		fmt.Fprintln(w)
	}
}

// runStore ramps the fleet on one store: SQLite (one verifier), or
// PostgreSQL (sr.replicas verifiers sharing a database).
func runStore(ctx context.Context, c config, sr storeRun, stdout, stderr io.Writer) (*storeResult, error) {
	state, err := os.MkdirTemp("", "fleet-verifier-")
	if err != nil {
		return nil, err
	}
	if !c.keep {
		defer os.RemoveAll(state)
	}
	var t *target
	switch {
	case c.inprocess:
		t, err = startInProcess(state, c.interval, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	case sr.store == "postgres":
		t, err = startPostgres(ctx, c, sr.replicas, state, newWarnFilter(stderr))
	default:
		t, err = startBinary(c.bin, state, c.interval, newWarnFilter(stderr))
	}
	if err != nil {
		return nil, err
	}
	defer t.stop()
	f := sim.New(sim.Options{InitialRecords: c.initial, GrowEvery: c.grow})
	defer f.Close()

	if err := t.call(ctx, "PUT", "/v1/policies/fleet", sim.Policy("fleet"), 200, nil); err != nil {
		return nil, err
	}
	what := sr.String()
	if sr.store == "postgres" {
		what += " (verifier CPU: all replicas; db CPU: the server's processes, when this run started it)"
	}
	fmt.Fprintf(stdout, "\n### %s\n\n", what)
	fmt.Fprintln(stdout, "| agents | attest/s (expected) | stored/s | lateness p50 / p99 | verifier CPU/attest | db CPU/attest | generator CPU/attest | verifier cores | db cores | generator cores | db MB (+MB/s) | TLS handshakes | enroll/s | held |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	res := &storeResult{run: sr}
	for i, n := range c.steps {
		last := i == len(c.steps)-1
		r, err := step(ctx, c, t, f, n, last)
		if err != nil {
			fmt.Fprintf(stdout, "| %d | step failed: %v |\n", n, err)
			fmt.Fprintf(stdout, "\nlargest N that held a %v interval (%s): %d\n", c.interval, sr, res.best)
			return res, nil
		}
		res.steps = append(res.steps, r)
		fmt.Fprintln(stdout, r.row())
		if !r.held {
			break
		}
		res.best = n
	}
	fmt.Fprintf(stdout, "\nlargest N that held a %v interval (%s): %d\n", c.interval, sr, res.best)
	return res, nil
}

type result struct {
	n                  int
	rate, expected     float64
	p50, p99           time.Duration
	verCPU, genCPU     time.Duration // per attestation
	dbCPU              time.Duration // per attestation (PostgreSQL started by this run)
	haveDB             bool
	verCores, genCores float64
	dbCores            float64
	haveVer            bool
	dbMB, dbMBps       float64
	enrollRate         float64
	handshakes         int64   // connections the agents accepted in the window
	stored             float64 // attestations/s the verifier counted in its store
	trusted, failed    int
	held               bool
	why                string
}

func (r *result) row() string {
	ver, vc := "n/a (in-process)", "n/a"
	if r.haveVer {
		ver, vc = fmt.Sprintf("%.0f µs", float64(r.verCPU.Microseconds())), fmt.Sprintf("%.2f", r.verCores)
	}
	dbc, dbcores := "n/a", "n/a"
	if r.haveDB {
		dbc, dbcores = fmt.Sprintf("%.0f µs", float64(r.dbCPU.Microseconds())), fmt.Sprintf("%.2f", r.dbCores)
	}
	held := "yes"
	if !r.held {
		held = "**no**: " + r.why
	}
	return fmt.Sprintf("| %d | %.0f (%.0f) | %.0f | %v / %v | %s | %s | %.0f µs | %s | %s | %.2f | %.1f (+%.2f) | %d | %.0f | %s |",
		r.n, r.rate, r.expected, r.stored, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), ver, dbc,
		float64(r.genCPU.Microseconds()), vc, dbcores, r.genCores, r.dbMB, r.dbMBps, r.handshakes, r.enrollRate, held)
}

// step grows the fleet to n agents, enrolls the new ones, waits until
// every agent is trusted and attested at least once more, then measures
// for c.measure.
func step(ctx context.Context, c config, t *target, f *sim.Fleet, n int, profile bool) (*result, error) {
	r := &result{n: n, expected: float64(n) / c.interval.Seconds()}
	have := len(f.Agents())
	added, err := f.Add("agent", n-have)
	if err != nil {
		return nil, err
	}
	if err := allowEKs(t.state, added); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := enroll(ctx, t, added, c.enrollers); err != nil {
		return nil, err
	}
	r.enrollRate = float64(len(added)) / time.Since(start).Seconds()
	if err := settle(ctx, t, n, c.settle); err != nil {
		return nil, err
	}
	time.Sleep(c.interval + c.interval/2) // every agent past its first, enrollment-time attestation
	f.TakeGaps()

	if profile && c.profile != "" { // this process: the generator (and the verifier with -inprocess)
		pf, err := os.Create(c.profile)
		if err != nil {
			return nil, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	// The verifier's own count of attestations it stored, around the
	// window (read before and after the CPU readings).
	s0, err := storedAttestations(ctx, t)
	if err != nil {
		return nil, err
	}
	q0, _, c0 := f.Counts()
	v0, okv := t.cpu()
	d0, okd := t.dbCPUNow()
	g0 := selfCPU()
	db0 := t.dbBytes()
	t0 := time.Now()
	time.Sleep(c.measure)
	q1, _, c1 := f.Counts()
	v1, okv1 := t.cpu()
	d1, okd1 := t.dbCPUNow()
	g1 := selfCPU()
	el := time.Since(t0)
	db1 := t.dbBytes()
	gaps := f.TakeGaps()
	s1, err := storedAttestations(ctx, t)
	if err != nil {
		return nil, err
	}
	r.stored = float64(s1-s0) / time.Since(t0).Seconds()

	att := q1 - q0
	if att <= 0 {
		return nil, errors.New("no attestations in the window")
	}
	r.rate = float64(att) / el.Seconds()
	r.handshakes = c1 - c0
	r.haveVer = okv && okv1
	r.verCPU = (v1 - v0) / time.Duration(att)
	r.haveDB = okd && okd1
	r.dbCPU = (d1 - d0) / time.Duration(att)
	r.dbCores = (d1 - d0).Seconds() / el.Seconds()
	r.verCores = (v1 - v0).Seconds() / el.Seconds()
	r.genCPU = (g1 - g0) / time.Duration(att)
	r.genCores = (g1 - g0).Seconds() / el.Seconds()
	r.dbMB = float64(db1) / 1e6
	r.dbMBps = float64(db1-db0) / 1e6 / el.Seconds()
	slices.Sort(gaps)
	late := func(p float64) time.Duration {
		if len(gaps) == 0 {
			return 0
		}
		return max(0, gaps[min(len(gaps)-1, int(p*float64(len(gaps))))]-c.interval)
	}
	r.p50, r.p99 = late(0.50), late(0.99)

	states, err := agentStates(ctx, t)
	if err != nil {
		return nil, err
	}
	r.trusted, r.failed = states["trusted"], states["failed"]
	switch {
	case r.failed > 0:
		r.why = fmt.Sprintf("%d agents failed", r.failed)
	case r.trusted != n:
		r.why = fmt.Sprintf("%d of %d agents trusted", r.trusted, n)
	case r.rate < 0.97*r.expected:
		r.why = fmt.Sprintf("%.0f%% of the expected rate", 100*r.rate/r.expected)
	case r.p99 > c.interval/4:
		r.why = fmt.Sprintf("p99 lateness %v", r.p99.Round(time.Millisecond))
	default:
		r.held = true
	}
	return r, nil
}

// enroll enrolls agents through the operator API, pinning each one's
// certificate, with workers in parallel.
func enroll(ctx context.Context, t *target, agents []*sim.Agent, workers int) error {
	ch := make(chan *sim.Agent)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range ch {
				body, _ := json.Marshal(verifier.AddAgentRequest{ID: a.ID, Addr: a.Addr, Policy: "fleet", Cert: string(a.CertPEM)})
				var err error
				for try := 0; try < 3 && ctx.Err() == nil; try++ {
					// An operational failure (502: the agent did not answer
					// in time, on this loaded machine) is tried again, as an
					// operator would; 409 then means the first try went
					// through after all.
					if err = t.call(ctx, "POST", "/v1/agents", body, 201, nil); err == nil || !isStatus(err, 502) {
						break
					}
					retries.Add(1)
					time.Sleep(time.Second)
				}
				if err != nil && !(retries.Load() > 0 && isStatus(err, 409)) {
					errs <- fmt.Errorf("enrolling %s: %w", a.ID, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, a := range agents {
		select {
		case ch <- a:
		case err = <-errs:
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if err != nil {
		return err
	}
	select {
	case err = <-errs:
	default:
	}
	return err
}

// retries counts enrollments tried again after a 502.
var retries atomic.Int64

func isStatus(err error, code int) bool {
	var se *statusError
	return errors.As(err, &se) && se.code == code
}

// storedAttestations sums the agents' attestation counters as the
// verifier stored them.
func storedAttestations(ctx context.Context, t *target) (int64, error) {
	var views []verifier.AgentView
	if err := t.call(ctx, "GET", "/v1/agents", nil, 200, &views); err != nil {
		return 0, err
	}
	var n int64
	for _, v := range views {
		n += v.Attestations
	}
	return n, nil
}

// agentStates counts the agents by state (GET /v1/agents).
func agentStates(ctx context.Context, t *target) (map[string]int, error) {
	var views []verifier.AgentView
	if err := t.call(ctx, "GET", "/v1/agents", nil, 200, &views); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, v := range views {
		out[v.State]++
		if v.State == "failed" && out["failed"] == 1 {
			out["first-failure:"+v.ID+": "+strings.Join(v.Reasons, "; ")]++
		}
	}
	return out, nil
}

// settle waits until n agents are trusted.
func settle(ctx context.Context, t *target, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := agentStates(ctx, t)
		if err != nil {
			return err
		}
		if st["failed"] > 0 {
			for k := range st {
				if strings.HasPrefix(k, "first-failure:") {
					return fmt.Errorf("%d agents failed, e.g. %s", st["failed"], strings.TrimPrefix(k, "first-failure:"))
				}
			}
		}
		if st["trusted"] == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d of %d agents trusted (%v)", limit, st["trusted"], n, st)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
