// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/policy"
)

// fsInfo caches, per device, what policy conditions test about a file
// system: magic, type name and UUID.
type fsInfo struct {
	proc   string
	fsUUID func(*os.File) ([]byte, error) // nil: no fsuuid= rules
	mu     sync.Mutex
	devs   map[uint64]fsEntry
}

type fsEntry struct {
	magic uint64
	name  string
	uuid  [16]byte
}

func newFSInfo(proc string, fsUUID func(*os.File) ([]byte, error)) *fsInfo {
	return &fsInfo{proc: proc, fsUUID: fsUUID, devs: map[uint64]fsEntry{}}
}

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
	if fi.fsUUID != nil {
		if u, err := fi.fsUUID(f); err == nil && len(u) == 16 {
			copy(e.uuid[:], u)
		}
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

// readCreds fills the credentials of the accessing thread tid (events
// carry thread ids, FAN_REPORT_TID): credentials are per thread, and a
// thread that kept root while its leader dropped to an ordinary uid must be
// judged as root (and the other way round). A task that is gone leaves
// them zero... which would match uid=0 rules: so unknown ids are set to the
// invalid id (uid_t)-1, which no rule holds.
func readCreds(proc string, tid int32, s *policy.Subject) {
	const invalid = ^uint32(0)
	s.UID, s.EUID, s.SUID, s.GID, s.EGID, s.SGID = invalid, invalid, invalid, invalid, invalid, invalid
	st, ok := threadStatus(proc, tid)
	if !ok {
		return
	}
	s.UID, s.EUID, s.SUID = st.uid[0], st.uid[1], st.uid[2]
	s.GID, s.EGID, s.SGID = st.gid[0], st.gid[1], st.gid[2]
	s.CapSetgid = st.capEff&(1<<unix.CAP_SETGID) != 0
	s.CapSetuid = st.capEff&(1<<unix.CAP_SETUID) != 0
}

// taskStatus is what intactd reads from a /proc status file.
type taskStatus struct {
	tgid, pid int32 // thread group id, and the task's own (thread) id
	uid, gid  [3]uint32
	capEff    uint64
}

// threadStatus reads the status of thread tid, race-aware: the thread
// group comes from /proc/TID/status, then the credentials from
// /proc/TGID/task/TID/status, which exists only while tid is a thread of
// that group (a tid reused by another process in between does not
// match). Both reads must agree on the ids, or ok is false.
func threadStatus(proc string, tid int32) (taskStatus, bool) {
	first, ok := parseStatusFile(proc + "/" + strconv.Itoa(int(tid)) + "/status")
	if !ok || first.pid != tid || first.tgid <= 0 {
		return taskStatus{}, false
	}
	if first.tgid == tid {
		return first, true // the thread group leader: one file, one task
	}
	st, ok := parseStatusFile(proc + "/" + strconv.Itoa(int(first.tgid)) + "/task/" + strconv.Itoa(int(tid)) + "/status")
	if !ok || st.pid != tid || st.tgid != first.tgid {
		return taskStatus{}, false
	}
	return st, true
}

// tgidOf returns the thread group (process) id of thread tid, or tid
// itself when it cannot be read.
func tgidOf(proc string, tid int32) int32 {
	if st, ok := parseStatusFile(proc + "/" + strconv.Itoa(int(tid)) + "/status"); ok && st.pid == tid && st.tgid > 0 {
		return st.tgid
	}
	return tid
}

func parseStatusFile(path string) (taskStatus, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return taskStatus{}, false
	}
	return parseStatus(b)
}

// parseStatus reads the Tgid, Pid, Uid, Gid and CapEff lines of a /proc
// status file; ok is false unless all of them are there and well formed.
func parseStatus(b []byte) (st taskStatus, ok bool) {
	const (
		haveTgid = 1 << iota
		havePid
		haveUID
		haveGID
		haveCap
		haveAll = haveTgid | havePid | haveUID | haveGID | haveCap
	)
	have := 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Tgid", "Pid":
			if len(f) != 1 {
				return st, false
			}
			n, err := strconv.ParseInt(f[0], 10, 32)
			if err != nil || n <= 0 {
				return st, false
			}
			if k == "Tgid" {
				st.tgid, have = int32(n), have|haveTgid
			} else {
				st.pid, have = int32(n), have|havePid
			}
		case "Uid", "Gid":
			if len(f) < 3 {
				return st, false
			}
			ids := [3]uint32{id(f[0]), id(f[1]), id(f[2])}
			if k == "Uid" {
				st.uid, have = ids, have|haveUID
			} else {
				st.gid, have = ids, have|haveGID
			}
		case "CapEff":
			if len(f) != 1 {
				return st, false
			}
			c, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				return st, false
			}
			st.capEff, have = c, have|haveCap
		}
	}
	return st, have == haveAll
}

func id(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return ^uint32(0)
	}
	return uint32(n)
}
