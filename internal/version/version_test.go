// SPDX-License-Identifier: Apache-2.0

package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}},
			"(devel) rev 0123456789ab, go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) rev 0123456789ab (modified), go1.26.0"},
		{debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0, go1.26.0"},
		{debug.BuildInfo{Main: debug.Module{Version: ""}}, "(devel) rev unknown"},
	} {
		if got := describe(&c.bi); got != c.want {
			t.Errorf("describe(%+v) = %q, want %q", c.bi.Settings, got, c.want)
		}
	}
}

func TestLine(t *testing.T) {
	if l := Line("intact"); !strings.HasPrefix(l, "intact ") {
		t.Errorf("Line = %q", l)
	}
}
