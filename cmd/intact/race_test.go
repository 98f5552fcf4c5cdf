// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/xattr"
)

// The attacker of TestTreeWalkRace: an unprivileged user who owns a
// directory that root walks and swaps names in it with
// renameat2(RENAME_EXCHANGE) as fast as they can. The test binary is run
// again as that user with swapHelperEnv set to DIR and the pairs to swap.
const swapHelperEnv = "INTACT_TEST_SWAP_HELPER"

// TestSwapHelper is the attacker's loop when swapHelperEnv is set (and
// nothing otherwise): "DIR|a:b|c:d...", swapping each pair in DIR until
// killed. It prints "ready" after the first round and a line every 64
// rounds after it, so the test sees that it keeps running.
func TestSwapHelper(t *testing.T) {
	spec := os.Getenv(swapHelperEnv)
	if spec == "" {
		t.Skip("the attacker process of TestTreeWalkRace, run by it")
	}
	parts := strings.Split(spec, "|")
	dfd, err := unix.Open(parts[0], unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(3)
	}
	var pairs [][2]string
	for _, p := range parts[1:] {
		a, b, _ := strings.Cut(p, ":")
		pairs = append(pairs, [2]string{a, b})
	}
	for round := 0; ; round++ {
		for _, p := range pairs {
			if err := unix.Renameat2(dfd, p[0], dfd, p[1], unix.RENAME_EXCHANGE); err != nil {
				fmt.Println("error:", err)
				os.Exit(3)
			}
		}
		if round == 0 {
			fmt.Println("ready")
		} else if round%64 == 0 {
			fmt.Println("swapping")
		}
	}
}

// raceTree is a tree owned by an unprivileged user next to root-only
// files outside it, with names that lead outside.
type raceTree struct {
	base, tree, outside string
	// outside files and the content hashes of every file outside
	secret, odir, ox, oxsig string
	outsideSums             map[string]string // sha256 hex -> path
}

const nobody = 65534

func makeRaceTree(t *testing.T) *raceTree {
	t.Helper()
	base := xattrDir(t)
	// nobody must reach base: open up base and the directory above it,
	// the two that t.TempDir made (0700), and nothing else.
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := &raceTree{base: base, tree: filepath.Join(base, "tree"), outside: filepath.Join(base, "outside"), outsideSums: map[string]string{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(r.outside, 0o755))
	r.secret = filepath.Join(r.outside, "secret")
	r.odir = filepath.Join(r.outside, "dir")
	r.ox = filepath.Join(r.odir, "x")
	r.oxsig = filepath.Join(r.odir, "x.sig")
	must(os.WriteFile(r.secret, []byte("root's secret\n"), 0o600))
	must(os.Mkdir(r.odir, 0o700))
	must(os.WriteFile(r.ox, []byte("root's x\n"), 0o600))
	must(os.WriteFile(r.oxsig, []byte("root's own x.sig\n"), 0o600))
	for _, p := range []string{r.secret, r.ox, r.oxsig} {
		b, _ := os.ReadFile(p)
		s := sha256.Sum256(b)
		r.outsideSums[hex.EncodeToString(s[:])] = p
	}

	// The tree: the user's files, and what they swap them with.
	must(os.Mkdir(r.tree, 0o755))
	w := func(name, content string) {
		must(os.WriteFile(filepath.Join(r.tree, name), []byte(content), 0o644))
	}
	w("f", "user file f\n")
	must(os.Symlink(r.secret, filepath.Join(r.tree, "lnk")))
	must(os.Mkdir(filepath.Join(r.tree, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(r.tree, "sub", "x"), []byte("user sub/x\n"), 0o644))
	must(os.Symlink(r.odir, filepath.Join(r.tree, "sublnk")))
	w("g", "user file g\n")
	must(unix.Mkfifo(filepath.Join(r.tree, "fifo"), 0o644))
	w("h", "user file h\n")
	must(os.Symlink("/dev/zero", filepath.Join(r.tree, "zero")))
	w("k", "user file k\n")
	must(os.Symlink(r.ox, filepath.Join(r.tree, "xlnk")))
	must(filepath.Walk(r.tree, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	}))
	return r
}

// attack starts the attacker as nobody and returns when it swaps. The
// returned function returns once the attacker has swapped again since the
// last call: called before each walk, it keeps a walk from running while
// the attacker, on a loaded machine, is not scheduled.
func (r *raceTree) attack(t *testing.T) (swapping func()) {
	t.Helper()
	helper := filepath.Join(r.base, "attacker")
	if _, err := os.Stat(helper); err != nil {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(self)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(helper, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(helper, "-test.run=^TestSwapHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), swapHelperEnv+"="+r.tree+"|f:lnk|sub:sublnk|g:fifo|h:zero|k:xlnk")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: true}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	br := bufio.NewReader(stdout)
	line, _ := br.ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("the attacker did not start: %q", line)
	}
	if uid := procUID(t, cmd.Process.Pid); uid != nobody {
		t.Fatalf("the attacker runs as uid %d, want %d", uid, nobody)
	}
	progress := make(chan struct{}, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line != "swapping\n" {
				continue
			}
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	return func() {
		t.Helper()
		// Drop a progress mark from before this call, then wait for a new one.
		select {
		case <-progress:
		default:
		}
		select {
		case <-progress:
		case <-time.After(2 * time.Minute):
			t.Fatalf("the attacker made no progress in 2 minutes")
		}
	}
}

func procUID(t *testing.T, pid int) int {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d", pid), &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

// check fails the test if anything outside the tree got a label or a
// .sig, or changed, or if out (a policy) lists a digest of a file
// outside.
func (r *raceTree) check(t *testing.T, what, out string) {
	t.Helper()
	for _, p := range []string{r.secret, r.ox, r.oxsig} {
		for _, name := range []string{"security.ima", "security.evm"} {
			if v, err := xattr.Get(p, name); err == nil {
				t.Fatalf("%s: %s of %s, outside the tree, was written: %x", what, name, p, v)
			} else if !errors.Is(err, xattr.ErrNotFound) {
				t.Fatalf("reading %s of %s: %v", name, p, err)
			}
		}
	}
	if b, _ := os.ReadFile(r.oxsig); string(b) != "root's own x.sig\n" {
		t.Fatalf("%s: %s, outside the tree, was replaced: %q", what, r.oxsig, b)
	}
	if fi, err := os.Lstat(r.oxsig); err != nil || fi.Mode() != 0o600 {
		t.Fatalf("%s: %s: %v %v, want a 0600 file", what, r.oxsig, fi, err)
	}
	if ents, _ := os.ReadDir(r.odir); len(ents) != 2 {
		t.Fatalf("%s: files appeared in %s, outside the tree: %v", what, r.odir, ents)
	}
	for sum, p := range r.outsideSums {
		if strings.Contains(out, sum) {
			t.Fatalf("%s: the output lists the digest of %s, outside the tree:\n%s", what, p, out)
		}
	}
}

// TestTreeWalkRace plays an unprivileged user who owns a tree root walks:
// while sign -r, sign --sigfile -r, hash -r, hmac -r and policy generate
// --tree run, the user swaps (renameat2 RENAME_EXCHANGE, in a loop) a file
// with a symlink to a root-only file outside, a directory with a symlink
// to a root-only directory outside (whose x.sig is 0600), files with a
// FIFO and with a symlink to /dev/zero. Over many runs no label, .sig or
// policy digest ever lands on or describes a file outside the tree, and
// no run hangs. On the old walk (readdir, then open by path) the first
// sign -r run labelled the outside file.
func TestTreeWalkRace(t *testing.T) {
	testenv.RequireRoot(t)
	r := makeRaceTree(t)
	keyDir := t.TempDir()
	key, cert := filepath.Join(keyDir, "k.pem"), filepath.Join(keyDir, "k.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", key, "--cert", cert)
	evmKey := makeEVMKey(t, keyDir, "race")
	policy := filepath.Join(keyDir, "policy.json")
	swapping := r.attack(t)

	runs := 60
	if testing.Short() {
		runs = 10
	}
	total := 0
	for _, c := range []struct {
		name string
		args []string
	}{
		{"sign -r", []string{"sign", "--key", key, "-r", "-j", "2", r.tree}},
		{"sign --sigfile -r", []string{"sign", "--key", key, "--sigfile", "-r", "-j", "2", r.tree}},
		{"sign --evm portable -r", []string{"sign", "--key", key, "--evm", "portable", "-r", "-j", "2", r.tree}},
		{"hash -r", []string{"hash", "-r", "-j", "2", r.tree}},
		{"hmac -r", []string{"hmac", "--evmkey", evmKey, "--passphrase-env", testPassEnv, "--uuid", "none", "-r", "-j", "2", r.tree}},
		{"policy generate --tree", []string{"policy", "generate", "--tree", r.tree, "-j", "2", "--out", policy}},
	} {
		changed, ran := 0, 0
		// At least runs runs, and more (up to 10 times as many) until the
		// walk has met the attacker's swaps a few times.
		for i := 0; i < runs || (changed < 3 && i < 10*runs); i++ {
			os.Remove(policy)
			swapping()
			type res struct {
				out, errs string
				code      int
			}
			done := make(chan res, 1)
			go func() {
				o, e, code := runCLI(t, c.args...)
				done <- res{o, e, code}
			}()
			var got res
			select {
			case got = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatalf("%s, run %d: no end after 2 minutes (blocked on the FIFO or reading /dev/zero?)", c.name, i)
			}
			if got.code != 0 && got.code != 2 {
				t.Fatalf("%s, run %d: exit %d\n%s", c.name, i, got.code, got.errs)
			}
			if strings.Contains(got.errs, "changed while the tree was walked") {
				changed++
			}
			out := got.out
			if b, err := os.ReadFile(policy); err == nil {
				out += string(b)
			}
			r.check(t, fmt.Sprintf("%s, run %d", c.name, i), out)
			ran++
		}
		t.Logf("%s: %d runs, %d reported a name changed during the walk", c.name, ran, changed)
		total += changed
	}
	if total == 0 {
		t.Errorf("no run saw the attacker's swaps; the test did not test the race")
	}
}
