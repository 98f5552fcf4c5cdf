package enforce

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/policy"
)

// fsInfo caches, per device, what policy conditions test about a file
// system: magic, type name and UUID.
type fsInfo struct {
	proc string
	mu   sync.Mutex
	devs map[uint64]fsEntry
}

type fsEntry struct {
	magic uint64
	name  string
	uuid  [16]byte
}

func newFSInfo(proc string) *fsInfo { return &fsInfo{proc: proc, devs: map[uint64]fsEntry{}} }

func (fi *fsInfo) get(f *os.File, dev uint64) fsEntry {
	fi.mu.Lock()
	e, ok := fi.devs[dev]
	fi.mu.Unlock()
	if ok {
		return e
	}
	var sfs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &sfs) == nil {
		e.magic = uint64(uint32(sfs.Type))
	}
	e.name = fsTypeByDev(fi.proc, dev)
	if u, err := evm.FSUUID(f); err == nil && len(u) == 16 {
		copy(e.uuid[:], u)
	}
	fi.mu.Lock()
	fi.devs[dev] = e
	fi.mu.Unlock()
	return e
}

// fsTypeByDev finds the file-system type of dev in mountinfo.
func fsTypeByDev(proc string, dev uint64) string {
	b, err := os.ReadFile(proc + "/self/mountinfo")
	if err != nil {
		return ""
	}
	want := strconv.FormatUint(uint64(unix.Major(dev)), 10) + ":" + strconv.FormatUint(uint64(unix.Minor(dev)), 10)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[2] != want {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				return f[i+1]
			}
		}
	}
	return ""
}

// readCreds fills the task credentials of pid from /proc/pid/status. A task
// that is gone leaves them zero... which would match uid=0 rules: so
// unknown ids are set to the invalid id (uid_t)-1, which no rule holds.
func readCreds(proc string, pid int32, s *policy.Subject) {
	const invalid = ^uint32(0)
	s.UID, s.EUID, s.SUID, s.GID, s.EGID, s.SGID = invalid, invalid, invalid, invalid, invalid, invalid
	b, err := os.ReadFile(proc + "/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid":
			if len(f) >= 3 {
				s.UID, s.EUID, s.SUID = id(f[0]), id(f[1]), id(f[2])
			}
		case "Gid":
			if len(f) >= 3 {
				s.GID, s.EGID, s.SGID = id(f[0]), id(f[1]), id(f[2])
			}
		case "CapEff":
			if len(f) == 1 {
				c, _ := strconv.ParseUint(f[0], 16, 64)
				s.CapSetgid = c&(1<<unix.CAP_SETGID) != 0
				s.CapSetuid = c&(1<<unix.CAP_SETUID) != 0
			}
		}
	}
}

func id(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return ^uint32(0)
	}
	return uint32(n)
}
