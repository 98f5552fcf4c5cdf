// SPDX-License-Identifier: Apache-2.0

// Package version says which build of intact is running: the module
// version and the VCS revision the Go toolchain stamped into the binary
// (runtime/debug.ReadBuildInfo).
package version

import (
	"runtime/debug"
	"strings"
)

// Line is the --version output of program prog: "intact v1.2.0 rev
// 0123456789ab (modified), go1.26.0". A binary built without VCS
// information (go run, go test, a tree without .git) says so.
func Line(prog string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return prog + " (no build information)"
	}
	return prog + " " + describe(bi)
}

func describe(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	var b strings.Builder
	b.WriteString(v)
	switch {
	case rev != "":
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString(" rev " + rev + modified)
	case v == "(devel)":
		b.WriteString(" rev unknown")
	}
	if bi.GoVersion != "" {
		b.WriteString(", " + bi.GoVersion)
	}
	return b.String()
}
