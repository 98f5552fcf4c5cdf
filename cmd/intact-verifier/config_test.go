package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The client settings: a flag wins over the environment, the environment
// over the configuration file; a named file that is missing, too large or
// malformed is an error naming it; a missing default file is nothing.
func TestClientSettings(t *testing.T) {
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "xdg", "intact-verifier")
	os.MkdirAll(cfgDir, 0o700)
	def := filepath.Join(cfgDir, "client.json")
	os.WriteFile(def, []byte(`{"server":"https://file:1","state":"/file/state","ca":"/file/ca"}`), 0o600)
	named := filepath.Join(dir, "named.json")
	os.WriteFile(named, []byte(`{"server":"https://named:1","token_file":"/named/token"}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"server":"x","bogus":1}`), 0o600)
	huge := filepath.Join(dir, "huge.json")
	os.WriteFile(huge, []byte(`{"server":"`+strings.Repeat("x", maxConfig)+`"}`), 0o600)

	resolve := func(vars map[string]string, args ...string) (*clientFlags, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c clientFlags
		c.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		e := &env{getenv: func(k string) string { return vars[k] }}
		return &c, c.resolve(e, set)
	}
	xdg := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg")}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	c, err := resolve(xdg)
	if err != nil || c.server != "https://file:1" || c.state != "/file/state" || c.ca != "/file/ca" {
		t.Errorf("default file: %+v, %v", c, err)
	}
	c, err = resolve(with("INTACT_VERIFIER_SERVER", "https://env:1"))
	if err != nil || c.server != "https://env:1" || c.state != "/file/state" {
		t.Errorf("env over file: %+v, %v", c, err)
	}
	c, err = resolve(with("INTACT_VERIFIER_SERVER", "https://env:1"), "--server", "https://flag:1")
	if err != nil || c.server != "https://flag:1" {
		t.Errorf("flag over env: %+v, %v", c, err)
	}
	c, err = resolve(with("INTACT_VERIFIER_CONFIG", named))
	if err != nil || c.server != "https://named:1" || c.tokenFile != "/named/token" || c.state != "" {
		t.Errorf("INTACT_VERIFIER_CONFIG: %+v, %v", c, err)
	}
	c, err = resolve(xdg, "--config", named)
	if err != nil || c.server != "https://named:1" {
		t.Errorf("--config: %+v, %v", c, err)
	}
	c, err = resolve(with("INTACT_VERIFIER_TOKEN", " secret-token\n"))
	if err != nil || c.token != "secret-token" || c.tokenFile != "" {
		t.Errorf("INTACT_VERIFIER_TOKEN: %+v, %v", c, err)
	}
	c, err = resolve(map[string]string{"HOME": filepath.Join(dir, "nohome")})
	if err != nil || c.server != "" {
		t.Errorf("no configuration at all: %+v, %v", c, err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.json"), bad, huge} {
		if _, err := resolve(xdg, "--config", path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("--config %s: %v, want an error naming it", path, err)
		}
	}
}
