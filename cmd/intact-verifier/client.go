// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/store"
)

type clientFlags struct {
	state, server, tokenFile, ca, config string
	token                                string // from INTACT_VERIFIER_TOKEN only
}

// defaultServer is the API address when nothing names another.
const defaultServer = "https://127.0.0.1:8443"

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.state, "state", "", "the server's state `DIR`: its api-token and verifier.crt are used (on the verifier's host)")
	fs.StringVar(&c.server, "server", "", "the verifier's API `URL` (https://HOST:PORT; default "+defaultServer+")")
	fs.StringVar(&c.tokenFile, "token-file", "", "`FILE` holding the API token")
	fs.StringVar(&c.ca, "ca", "", "the server's certificate `FILE` (PEM), pinned")
	fs.StringVar(&c.config, "config", "", "client configuration `FILE` (JSON; default $INTACT_VERIFIER_CONFIG, else ~/.config/intact-verifier/client.json if it exists)")
}

// clientConfig is the client's configuration file.
type clientConfig struct {
	Server    string `json:"server"`
	State     string `json:"state"`
	TokenFile string `json:"token_file"`
	CA        string `json:"ca"`
}

// maxConfig bounds the configuration file.
const maxConfig = 64 << 10

// readClientConfig reads the configuration file path; a missing default
// file is no configuration.
func readClientConfig(path string, explicit bool) (*clientConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return &clientConfig{}, nil
		}
		return nil, fmt.Errorf("client configuration %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("client configuration %s: %w", path, unwrapPath(err))
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("client configuration %s: larger than %d bytes", path, maxConfig)
	}
	var c clientConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("client configuration %s: %v", path, err)
	}
	return &c, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolve fills what no flag gave from the environment, then from the
// configuration file: a flag wins over the environment, the environment
// over the file.
func (c *clientFlags) resolve(e *env, set map[string]bool) error {
	getenv := e.getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	pick := func(flagName string, dst *string, envName string) {
		if !set[flagName] && *dst == "" {
			*dst = getenv(envName)
		}
	}
	pick("config", &c.config, "INTACT_VERIFIER_CONFIG")
	pick("state", &c.state, "INTACT_VERIFIER_STATE")
	pick("server", &c.server, "INTACT_VERIFIER_SERVER")
	pick("token-file", &c.tokenFile, "INTACT_VERIFIER_TOKEN_FILE")
	pick("ca", &c.ca, "INTACT_VERIFIER_CA")
	if c.tokenFile == "" {
		c.token = strings.TrimSpace(getenv("INTACT_VERIFIER_TOKEN"))
	}
	path, explicit := c.config, c.config != ""
	if !explicit {
		dir := getenv("XDG_CONFIG_HOME")
		if dir == "" {
			if home := getenv("HOME"); home != "" {
				dir = filepath.Join(home, ".config")
			}
		}
		if dir == "" {
			return nil
		}
		path = filepath.Join(dir, "intact-verifier", "client.json")
	}
	cfg, err := readClientConfig(path, explicit)
	if err != nil {
		return err
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.server, cfg.Server)
	fill(&c.state, cfg.State)
	if c.token == "" {
		fill(&c.tokenFile, cfg.TokenFile)
	}
	fill(&c.ca, cfg.CA)
	return nil
}

type client struct {
	base  string
	token string
	http  *http.Client
}

// maxReply bounds an API answer.
const maxReply = 64 << 20

// client makes the API client from the flags fs parsed, the environment
// and the configuration file.
func (c *clientFlags) client(e *env, fs *flag.FlagSet) (*client, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := c.resolve(e, set); err != nil {
		return nil, err
	}
	if c.server == "" {
		c.server = defaultServer
	}
	if c.state != "" {
		if c.tokenFile == "" && c.token == "" {
			c.tokenFile = filepath.Join(c.state, tokenFile)
		}
		if c.ca == "" {
			c.ca = filepath.Join(c.state, certFile)
		}
	}
	if (c.tokenFile == "" && c.token == "") || c.ca == "" {
		return nil, usagef("give --state DIR, or --token-file and --ca (or set them in INTACT_VERIFIER_* or the client configuration)")
	}
	tok := []byte(c.token)
	if c.tokenFile != "" {
		var err error
		if tok, err = readfile.Read(c.tokenFile, readfile.Small); err != nil {
			return nil, err
		}
	}
	caPEM, err := readfile.Read(c.ca, readfile.Cert)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: not a PEM certificate", c.ca)
	}
	pin := blk.Bytes
	u, err := url.Parse(c.server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, usagef("--server %q: want https://HOST:PORT", c.server)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the server's certificate is pinned below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || subtle.ConstantTimeCompare(cs.PeerCertificates[0].Raw, pin) != 1 {
				return errors.New("the server's certificate is not the one in --ca")
			}
			return nil
		},
	}}
	return &client{base: strings.TrimSuffix(c.server, "/"), token: strings.TrimSpace(string(tok)),
		http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}, nil
}

func (c *client) do(method, path string, body []byte, out any) error {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (%s)", e.Error, resp.Status)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	return json.Unmarshal(b, out)
}

func (c *client) addAgent(e *env, id, addr, policy, certPath string) error {
	req := verifier.AddAgentRequest{ID: id, Addr: addr, Policy: policy}
	if certPath != "" {
		b, err := readfile.Read(certPath, readfile.Cert)
		if err != nil {
			return err
		}
		req.Cert = string(b)
	}
	body, _ := json.Marshal(req)
	var v verifier.AgentView
	if err := c.do(http.MethodPost, "/v1/agents", body, &v); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "enrolled %s (%s), certificate sha256 %s\n", esc(v.ID), esc(v.Addr), esc(v.CertSHA256))
	return nil
}

func (c *client) listAgents(e *env) error {
	var vs []verifier.AgentView
	if err := c.do(http.MethodGet, "/v1/agents", nil, &vs); err != nil {
		return err
	}
	if err := printAgents(e.stdout, vs); err != nil {
		return err
	}
	for _, v := range vs {
		if notTrusted(v.State) {
			return errFailed // exit 1, as for agents show
		}
	}
	return nil
}

func (c *client) listPolicies(e *env) error {
	var names []string
	if err := c.do(http.MethodGet, "/v1/policies", nil, &names); err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(e.stdout, esc(n))
	}
	return nil
}

func (c *client) reactivateAgent(e *env, id, note string) error {
	body, _ := json.Marshal(verifier.ReactivateRequest{Note: note})
	var v verifier.AgentView
	if err := c.do(http.MethodPost, "/v1/agents/"+url.PathEscape(id)+"/reactivate", body, &v); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "reactivated %s: %s, attested again from now on\n", esc(v.ID), esc(v.State))
	return nil
}

// printAgents prints agents as a table. Every string an agent can
// influence is escaped (esc): a tab, newline or escape code in a path
// cannot forge a row or a column.
func printAgents(w io.Writer, vs []verifier.AgentView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// With replicas sharing the store: which one attests each agent, and
	// its last successful attestation (a lapsed lease: no replica does).
	replicas := false
	for _, v := range vs {
		replicas = replicas || v.LeaseUntil != nil
	}
	head := "ID\tADDR\tPOLICY\tSTATE\tRECORDS\tLAST ATTESTED\tREASON"
	if replicas {
		head = "ID\tADDR\tPOLICY\tSTATE\tRECORDS\tLAST ATTESTED\tLAST TRUSTED\tREPLICA\tREASON"
	}
	fmt.Fprintln(tw, head)
	stamp := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	now := time.Now()
	for _, v := range vs {
		reason := ""
		if len(v.Reasons) > 0 {
			reason = v.Reasons[0]
		}
		if !replicas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", esc(v.ID), esc(v.Addr), esc(v.Policy), esc(v.State), v.LogOffset, stamp(v.LastAttested), esc(reason))
			continue
		}
		replica := "-"
		switch {
		case v.LeaseUntil == nil:
		case v.LeaseUntil.Before(now):
			replica = "none (lease lapsed " + v.LeaseUntil.Format(time.RFC3339) + ")"
		default:
			replica = esc(v.Replica)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", esc(v.ID), esc(v.Addr), esc(v.Policy), esc(v.State), v.LogOffset,
			stamp(v.LastAttested), stamp(v.LastTrusted), replica, esc(reason))
	}
	return tw.Flush()
}

func (c *client) showAgent(e *env, id string, jsonOut bool) error {
	var raw []byte
	if err := c.do(http.MethodGet, "/v1/agents/"+url.PathEscape(id), nil, &raw); err != nil {
		return err
	}
	var v verifier.AgentView
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if jsonOut {
		e.stdout.Write(raw)
	} else {
		printAgent(e.stdout, &v)
	}
	if notTrusted(v.State) {
		return errFailed
	}
	return nil
}

// notTrusted reports whether agents show and list exit 1 for an agent in
// state: failed, unreachable (no fresh evidence: a monitor must not take
// it for good news) or gap-after-reboot. An agent enrolled and not yet
// attested exits 0.
func notTrusted(state string) bool {
	return state == store.StateFailed || state == store.StateUnreachable || state == store.StateGap
}

// printAgent prints an agent as agents show does. Every string an
// agent can influence (its reasons carry paths from its measurement
// list) is escaped (esc): it prints on its own line and cannot forge
// another.
func printAgent(w io.Writer, v *verifier.AgentView) {
	fmt.Fprintf(w, "agent:        %s\naddr:         %s\npolicy:       %s\nstate:        %s\n", esc(v.ID), esc(v.Addr), esc(v.Policy), esc(v.State))
	if v.Kind != "" {
		fmt.Fprintf(w, "failure:      %s\n", esc(v.Kind))
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "reason:       %s\n", esc(r))
	}
	printShow(w, v)
}

// esc returns s as it may be printed on an operator's terminal: as it
// is when it is valid UTF-8 of printable characters (unicode.IsPrint:
// letters, marks, numbers, punctuation, symbols, the ASCII space)
// without '"' or '\\'; otherwise as a Go quoted ASCII string (\n, \t,
// \x1b, \u202e), so that no newline, tab, escape sequence or direction
// override reaches the terminal, and an escaped string is told from a
// plain one by its quotes.
func esc(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// printShow prints an agent's counters, its last attestation, its
// history (changes of outcome, and heartbeats while it stays the same)
// and its timeline.
func printShow(w io.Writer, v *verifier.AgentView) {
	fmt.Fprintf(w, "attestations: %d", v.Attestations)
	if v.LastAttested != nil {
		fmt.Fprintf(w, ", the last at %s", v.LastAttested.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if v.LastTrusted != nil {
		fmt.Fprintf(w, "last trusted: %s\n", v.LastTrusted.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "list:         %s, pcr %d, %d records verified\ncertificate:  sha256 %s\n",
		esc(v.LogSource), v.LogPCR, v.LogOffset, esc(v.CertSHA256))
	if len(v.History) > 0 {
		fmt.Fprintln(w, "history (newest first: each change, and one entry per heartbeat while unchanged):")
	}
	for _, h := range v.History {
		what := esc(h.State)
		if h.Kind != "" {
			what += " (" + esc(h.Kind) + ")"
		}
		if h.Heartbeat {
			what += ", unchanged"
		}
		fmt.Fprintf(w, "  %s  %s (attestation %d, %d records)\n", h.Time.Format(time.RFC3339), what, h.Attestations, h.LogOffset)
		for _, r := range h.Reasons {
			fmt.Fprintf(w, "      %s\n", esc(r))
		}
	}
	printTimeline(w, v.Timeline)
}

func (c *client) removeAgent(e *env, id string) error {
	if err := c.do(http.MethodDelete, "/v1/agents/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %s\n", esc(id))
	return nil
}

func (c *client) ackAgent(e *env, id string) error {
	if err := c.do(http.MethodPost, "/v1/agents/"+url.PathEscape(id)+"/ack", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "acknowledged the reboot after a gap of %s: trusted again from its next good attestation\n", esc(id))
	return nil
}

func (c *client) addPolicy(e *env, name, path string) error {
	b, err := readfile.Read(path, readfile.Policy)
	if err != nil {
		return err
	}
	var pv verifier.PolicyView
	if err := c.do(http.MethodPut, "/v1/policies/"+url.PathEscape(name), b, &pv); err != nil {
		return fmt.Errorf("policy %s: %w", path, err) // the verifier refused the file's content
	}
	fmt.Fprintf(e.stdout, "policy %s stored (%d paths)\n", esc(pv.Name), pv.Paths)
	return nil
}

func (c *client) showPolicy(e *env, name string) error {
	var raw []byte
	if err := c.do(http.MethodGet, "/v1/policies/"+url.PathEscape(name), nil, &raw); err != nil {
		return err
	}
	e.stdout.Write(raw)
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		fmt.Fprintln(e.stdout)
	}
	return nil
}

// printTimeline prints an agent's events, oldest first.
func printTimeline(w io.Writer, tl []verifier.Notification) {
	if len(tl) == 0 {
		return
	}
	fmt.Fprintln(w, "timeline:")
	for _, n := range tl {
		what := esc(n.Type)
		switch {
		case n.Type == verifier.EventReboot:
			what = "reboot detected (the new boot is attested from its first record)"
		case n.Type == verifier.EventReactivated:
			what = esc(n.Previous) + " -> " + esc(n.State) + ": reactivated by the operator"
		case n.Previous != "" && n.Type != verifier.EventRemoved:
			what = esc(n.Previous) + " -> " + esc(n.State)
		}
		if n.Kind != "" {
			what += " (" + esc(n.Kind) + ")"
		}
		fmt.Fprintf(w, "  %s  %s\n", n.Time.Format(time.RFC3339), what)
		for _, r := range n.Reasons {
			fmt.Fprintf(w, "      %s\n", esc(r))
		}
	}
}

// agentEAR prints the agent's signed attestation result (a JWT).
func (c *client) agentEAR(e *env, id string, decode bool) error {
	var raw []byte
	if err := c.do(http.MethodGet, "/v1/agents/"+url.PathEscape(id)+"/ear", nil, &raw); err != nil {
		return err
	}
	token := string(bytes.TrimSpace(raw))
	if !decode {
		fmt.Fprintf(e.stdout, "%s\n", token)
		return nil
	}
	var jwk []byte
	if err := c.do(http.MethodGet, "/v1/ear-key", nil, &jwk); err != nil {
		return err
	}
	pub, err := ear.ParseJWK(jwk)
	if err != nil {
		return fmt.Errorf("the verifier's EAR key: %w", err)
	}
	res, err := ear.Verify(token, pub)
	if err != nil {
		fmt.Fprintf(e.stderr, "intact-verifier: error: the EAR of %s does not verify with the verifier's key: %v\n", esc(id), err)
		return errFailed
	}
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	return nil
}
