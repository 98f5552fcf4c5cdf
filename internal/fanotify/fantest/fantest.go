// SPDX-License-Identifier: Apache-2.0

// Package fantest runs fanotify tests safely: each test re-executes itself
// under `timeout -s KILL` and `unshare -m --propagation private`, mounts a
// file system of its own (tmpfs, or a loop-mounted ext4 image) inside that
// private mount namespace, and may mark only that mount. Nothing outside
// the namespace can see the mount, so nothing outside can ever block on
// one of its permission events; the hard timeout kills the child (and with
// it the fanotify group, which lets the kernel allow everything pending)
// whatever happens.
package fantest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/testenv"
)

// FS is the kind of private file system a test gets.
type FS string

// The file systems.
const (
	Tmpfs FS = "tmpfs"
	Ext4  FS = "ext4" // loop-mounted image: xattrs, generation, UUID
)

const (
	envTest = "INTACT_FANTEST_NAME"
	envNS   = "INTACT_FANTEST_PARENT_MNTNS"
)

// Mount returns the path of a private mount of kind fs when called in the
// re-executed child, with child true. In the parent it re-runs the current
// test in the child under a hard timeout, fails the test if the child
// fails, and returns child false: the caller must return at once.
//
//	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
//	if !child {
//		return
//	}
func Mount(t *testing.T, fs FS, timeout time.Duration) (dir string, child bool) {
	t.Helper()
	if os.Getenv(envTest) == t.Name() {
		return childMount(t, fs), true
	}
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "unshare")
	testenv.RequireTool(t, "timeout")
	if fs == Ext4 {
		testenv.RequireTool(t, "mkfs.ext4")
	}
	runChild(t, timeout)
	return "", false
}

// Isolated re-runs the current test like Mount, but in a pid namespace of
// its own as well (unshare -p -f --mount-proc --kill-child) and without
// mounting anything: for tests that run programs which mount their own file
// systems and start detached daemons. The test is pid 1 of its namespace,
// so when the child ends, however it ends (the hard timeout included), the
// kernel kills every process it started. In the child it checks the mount
// namespace, makes all mounts private and returns true; in the parent it
// returns false and the caller must return at once.
func Isolated(t *testing.T, timeout time.Duration) (child bool) {
	t.Helper()
	if os.Getenv(envTest) == t.Name() {
		childNS(t)
		return true
	}
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "unshare")
	testenv.RequireTool(t, "timeout")
	runChild(t, timeout, "-p", "-f", "--mount-proc", "--kill-child")
	return false
}

func mntNS() string {
	l, _ := os.Readlink("/proc/self/ns/mnt")
	return l
}

func runChild(t *testing.T, timeout time.Duration, unshareArgs ...string) {
	t.Helper()
	secs := strconv.Itoa(int(timeout.Seconds()))
	args := append([]string{"-s", "KILL", secs, "unshare", "-m", "--propagation", "private"}, unshareArgs...)
	args = append(args, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v",
		"-test.timeout="+(timeout-2*time.Second).String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "timeout", args...)
	cmd.Env = append(os.Environ(), envTest+"="+t.Name(), envNS+"="+mntNS())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("child in a private mount namespace (%s):\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("child test failed: %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte("--- PASS: "+t.Name())) {
		t.Fatalf("child did not report a pass for %s", t.Name())
	}
}

// childNS checks that the child runs in a mount namespace of its own and
// makes every mount in it private.
func childNS(t *testing.T) {
	t.Helper()
	if ns := mntNS(); ns == "" || ns == os.Getenv(envNS) {
		t.Fatalf("refusing to mount: not in a private mount namespace (%q)", ns)
	}
	// Make sure nothing propagates back, whatever unshare did.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("making mounts private: %v", err)
	}
}

// childMount checks that it runs in a mount namespace of its own, then
// mounts the private file system.
func childMount(t *testing.T, fs FS) string {
	t.Helper()
	childNS(t)
	base := t.TempDir()
	dir := filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	switch fs {
	case Tmpfs:
		if err := unix.Mount("intact-test", dir, "tmpfs", 0, "size=256m,mode=0755"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
	case Ext4:
		img := filepath.Join(base, "fs.img")
		run(t, "truncate", "-s", "256M", img)
		run(t, "mkfs.ext4", "-q", "-I", "256", "-O", "^has_journal", img)
		run(t, "mount", "-o", "loop", img, dir)
	default:
		t.Fatalf("unknown file system %q", fs)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// Copy copies the regular file src to dst with mode perm.
func Copy(t testing.TB, src, dst string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, perm); err != nil {
		t.Fatal(err)
	}
}

// Command returns a command limited to d; the helper processes a test
// starts run under it so that none can hang the test.
func Command(t testing.TB, d time.Duration, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second
	return cmd
}
