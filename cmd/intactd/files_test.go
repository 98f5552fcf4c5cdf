// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFilesNamedAndBounded: intactd's policy, certificates, EVM key and
// config file, missing or endless (/dev/zero), fail at
// once with an error naming the file (loaders only: nothing is marked).
func TestFilesNamedAndBounded(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("x\n"), 0o600)
	for _, bad := range []string{filepath.Join(dir, "missing"), "/dev/zero"} {
		for name, load := range map[string]func() error{
			"policy":   func() error { _, err := loadPolicy(bad); return err },
			"cert":     func() error { _, err := loadAppraiser(Config{Certs: []string{bad}}); return err },
			"evm cert": func() error { _, err := loadAppraiser(Config{EVMCerts: []string{bad}}); return err },
			"evm key":  func() error { _, err := loadEVMKey(bad, pass); return err },
			"config":   func() error { return loadConfig(bad, &Config{}) },
		} {
			start := time.Now()
			err := load()
			if err == nil || !strings.Contains(err.Error(), bad) || time.Since(start) > time.Second {
				t.Errorf("%s %s: %v after %v; want an error naming it at once", name, bad, err, time.Since(start))
			}
		}
	}
}
