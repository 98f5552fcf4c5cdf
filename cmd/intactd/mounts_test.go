package main

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const sampleMountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
24 22 8:2 / /usr rw,relatime shared:3 - ext4 /dev/sda2 rw
25 24 0:40 / /usr/local/tmp rw - tmpfs scratch rw,size=1024k
26 24 8:2 /lib /usr/lib2 rw - ext4 /dev/sda2 rw
27 22 8:3 /sub /srv\040data rw - xfs /dev/sda3 rw
28 24 0:41 / /usr/local/proc rw - proc proc rw
29 22 0:42 / /usrx rw - tmpfs t rw
garbage line
`

func TestParseMountinfo(t *testing.T) {
	ms := parseMountinfo([]byte(sampleMountinfo))
	if len(ms) != 8 {
		t.Fatalf("%d entries, want 8: %+v", len(ms), ms)
	}
	if m := ms[5]; m.MountPoint != "/srv data" || m.Root != "/sub" || m.FSType != "xfs" || m.Dev != unix.Mkdev(8, 3) {
		t.Errorf("escaped entry = %+v", m)
	}
	// Nested: the tmpfs under /usr; not the bind mount of the same file
	// system (covered), not procfs, not /usrx (not below /usr).
	got := uncovered(ms, []string{"/usr"}, map[uint64]bool{unix.Mkdev(8, 2): true})
	if len(got) != 1 || got[0].MountPoint != "/usr/local/tmp" {
		t.Errorf("uncovered = %+v, want /usr/local/tmp only", got)
	}
	if err := checkWholeFS(ms, "/usr"); err != nil {
		t.Errorf("/usr: %v", err)
	}
	if err := checkWholeFS(ms, "/srv data"); err == nil || !strings.Contains(err.Error(), "bind mount of /sub") {
		t.Errorf("/srv data (a subdirectory of its file system): %v", err)
	}
}
