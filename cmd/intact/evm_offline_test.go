// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/xattr"
)

// The fixed UUID of the test file system (mkfs.ext4 -U), so that full
// signatures and HMACs can be checked against evmctl --uuid=.
const offlineUUID = "3f8a2c41-9d7e-4b0a-a5c6-1e2f3a4b5c6d"

const inMountNSEnv = "INTACT_TEST_IN_MOUNTNS"

// TestOfflineAttack: an ext4 image is labelled with IMA signatures and EVM
// HMACs (and a few portable EVM signatures), unmounted; then, with the
// machine "off", an attacker mounts it and changes content, mode, owner,
// security labels, copies labels between files, replaces a file by a copy
// with its xattrs, removes labels. After a remount intact verify -r names
// every changed file with its verdict and passes every untouched one.
//
// The test re-runs itself in a private mount namespace (unshare -m), so
// its mounts are never visible outside and vanish with it.
func TestOfflineAttack(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"mkfs.ext4", "mount", "umount", "unshare", "truncate"} {
		testenv.RequireTool(t, tool)
	}
	if os.Getenv(inMountNSEnv) == "" {
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
			os.Args[0], "-test.run=^TestOfflineAttack$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), inMountNSEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestOfflineAttack")) {
			t.Fatalf("offline attack in a private mount namespace: %v\n%s", err, out)
		}
		t.Logf("in a private mount namespace:\n%s", out)
		return
	}
	offlineAttack(t)
}

// image makes an ext4 file system in a file and returns a function that
// mounts it (loop) at a fixed directory and returns that directory and a
// function that unmounts it.
func image(t *testing.T) (mount func() (string, func())) {
	t.Helper()
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	runTool(t, "truncate", "-s", "32M", img)
	runTool(t, "mkfs.ext4", "-q", "-F", "-U", offlineUUID, "-I", "256", img)
	return func() (string, func()) {
		runTool(t, "mount", "-o", "loop", img, mnt)
		mounted := true
		umount := func() {
			if mounted {
				runTool(t, "umount", mnt)
				mounted = false
			}
		}
		t.Cleanup(umount)
		return mnt, umount
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func offlineAttack(t *testing.T) {
	keys := t.TempDir()
	sk, cert := filepath.Join(keys, "s.pem"), filepath.Join(keys, "s.der")
	mustRun(t, 0, "keygen", "--type", "ec-p256", "--key", sk, "--cert", cert)
	evmKey := makeEVMKey(t, keys, "evm")
	mount := image(t)

	// --- the administrator labels the tree ---
	mnt, umount := mount()
	tree := filepath.Join(mnt, "tree")
	port := filepath.Join(tree, "portable")
	os.MkdirAll(port, 0o755)
	p := func(n string) string { return filepath.Join(tree, n) }
	hmacFiles := []string{"untouched-1", "untouched-2", "byte-changed", "appended", "setuid", "chowned",
		"selinux-set", "selinux-changed", "capability-added", "labels-copied", "replaced",
		"ima-removed", "evm-removed", "untouched-3"}
	portFiles := []string{"portable/untouched", "portable/chowned", "portable/replaced"}
	for i, n := range append(append([]string{}, hmacFiles...), portFiles...) {
		writeFile(t, p(n), strings.Repeat(n+" ", i+3)+"\n")
	}
	setX(t, p("selinux-changed"), evm.XattrSELinux, "system_u:object_r:bin_t:s0\x00")
	setX(t, p("untouched-3"), evm.XattrSELinux, "system_u:object_r:etc_t:s0\x00")
	mustRun(t, 0, "sign", "--key", sk, "--evm", "portable", "-r", port)
	mustRun(t, 0, append([]string{"sign", "--key", sk}, hmacFileArgs(p, hmacFiles)...)...)
	mustRun(t, 0, append([]string{"hmac", "--evmkey", evmKey, "--passphrase-env", testPassEnv}, hmacFileArgs(p, hmacFiles)...)...)
	checkUUID(t, mnt, evmKey)
	verifyArgs := []string{"--cert", cert, "--evmkey", evmKey, "--passphrase-env", testPassEnv, "--require-evm", "-r", tree}
	if v := verdicts(t, 0, verifyArgs...); len(v) != len(hmacFiles)+len(portFiles) {
		t.Fatalf("before the attack: %v", v)
	}
	umount()

	// --- the machine is off: the attacker mounts the disk ---
	_, umount = mount()
	attack(t, p)
	umount()

	// --- back on: the administrator verifies ---
	_, umount = mount()
	defer umount()
	want := map[string]string{
		"untouched-1": "ok", "untouched-2": "ok", "untouched-3": "ok",
		"byte-changed":       "content-changed",
		"appended":           "content-changed",
		"setuid":             "metadata-changed",
		"chowned":            "metadata-changed",
		"selinux-set":        "metadata-changed",
		"selinux-changed":    "metadata-changed",
		"capability-added":   "metadata-changed",
		"labels-copied":      "content-changed",  // the copied signature is over another file's content
		"replaced":           "metadata-changed", // same content and xattrs, new inode
		"ima-removed":        "no-label",
		"evm-removed":        "no-label",
		"portable/untouched": "ok",
		"portable/chowned":   "metadata-changed",
		"portable/replaced":  "ok", // portable signatures are not bound to the inode
	}
	got := verdicts(t, 1, verifyArgs...)
	for n, w := range want {
		if got[p(n)] != w {
			t.Errorf("%s: verdict %q, want %q", n, got[p(n)], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("verify reported %d files, want %d: %v", len(got), len(want), got)
	}
	// The human output names every changed file, and no untouched one.
	out, _, code := runCLI(t, append([]string{"verify"}, verifyArgs...)...)
	t.Logf("intact verify after the attack (exit %d):\n%s", code, out)
	for n, w := range want {
		named := strings.Contains(out, p(n)+": ")
		if code != 1 || named != (w != "ok") {
			t.Errorf("human output (exit %d) names %s: %v, want %v\n%s", code, n, named, w != "ok", out)
		}
	}
}

func hmacFileArgs(p func(string) string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, p(n))
	}
	return out
}

func setX(t *testing.T, path, name, value string) {
	t.Helper()
	if err := xattr.Set(path, name, []byte(value)); err != nil {
		t.Fatal(err)
	}
}

func getX(t *testing.T, path, name string) []byte {
	t.Helper()
	v, err := xattr.Get(path, name)
	if err != nil {
		t.Fatalf("%s of %s: %v", name, path, err)
	}
	return v
}

// checkUUID: intact reads the file system's UUID as mkfs.ext4 -U set it:
// HMACs computed with --uuid <that UUID> are the ones written, and a full
// signature made without --uuid passes evmctl verify --uuid=<that UUID>.
func checkUUID(t *testing.T, mnt, evmKey string) {
	f := writeFile(t, filepath.Join(mnt, "uuid-probe"), "probe\n")
	defer os.Remove(f)
	a := mustRun(t, 0, "hmac", "-n", "--evmkey", evmKey, "--passphrase-env", testPassEnv, f)
	b := mustRun(t, 0, "hmac", "-n", "--evmkey", evmKey, "--passphrase-env", testPassEnv, "--uuid", offlineUUID, f)
	c := mustRun(t, 0, "hmac", "-n", "--evmkey", evmKey, "--passphrase-env", testPassEnv, "--uuid", "none", f)
	if a != b || a == c {
		t.Errorf("hmac with the fs uuid %q, with --uuid %s %q, without uuid %q", a, offlineUUID, b, c)
	}
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if u, err := evm.FSUUID(fh); err != nil || evm.FormatUUID(u) != offlineUUID {
		t.Errorf("FSUUID = %x, %v; want %s", u, err, offlineUUID)
	}
	testenv.RequireTool(t, "evmctl")
	dir := t.TempDir()
	key, cert := opensslKey(t, dir, "uuid", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
	mustRun(t, 0, "sign", "--key", key, "--evm", "full", f)
	if out, ok := evmctl(t, "verify", "--uuid="+offlineUUID, "--key", cert, f); !ok {
		t.Errorf("evmctl verify --uuid=%s of intact's full signature: %s", offlineUUID, out)
	}
}

// attack makes every off-line change, each on its own file.
func attack(t *testing.T, p func(string) string) {
	t.Helper()
	rewrite := func(n string, fn func([]byte) []byte) {
		b, err := os.ReadFile(p(n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p(n), fn(b), 0); err != nil { // same inode
			t.Fatal(err)
		}
	}
	rewrite("byte-changed", func(b []byte) []byte { b[0] ^= 1; return b })
	rewrite("appended", func(b []byte) []byte { return append(b, "more\n"...) })
	must(t, os.Chmod(p("setuid"), os.ModeSetuid|0o755))
	must(t, os.Chown(p("chowned"), 1000, 1000))
	must(t, os.Chown(p("portable/chowned"), 0, 1000))
	setX(t, p("selinux-set"), evm.XattrSELinux, "unconfined_u:object_r:bin_t:s0\x00")
	setX(t, p("selinux-changed"), evm.XattrSELinux, "system_u:object_r:shell_exec_t:s0\x00")
	cap, _ := hex.DecodeString("0100000200200000000000000000000000000000") // cap_net_raw+ep
	setX(t, p("capability-added"), evm.XattrCapability, string(cap))
	for _, n := range []string{evm.XattrIMA, evm.XattrEVM} {
		setX(t, p("labels-copied"), n, string(getX(t, p("untouched-1"), n)))
	}
	replaceWithCopy(t, p("replaced"))
	replaceWithCopy(t, p("portable/replaced"))
	must(t, xattr.Remove(p("ima-removed"), evm.XattrIMA))
	must(t, xattr.Remove(p("evm-removed"), evm.XattrEVM))
}

// replaceWithCopy replaces path by a new file (new inode) with the same
// content, mode, owner and security.* xattrs.
func replaceWithCopy(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	tmp := path + ".new"
	must(t, os.WriteFile(tmp, b, fi.Mode().Perm()))
	for _, n := range []string{evm.XattrSELinux, evm.XattrIMA, evm.XattrEVM} {
		if v, err := xattr.Get(path, n); err == nil {
			must(t, xattr.Set(tmp, n, v))
		}
	}
	var before, after unix.Stat_t
	must(t, unix.Stat(path, &before))
	must(t, os.Rename(tmp, path))
	must(t, unix.Stat(path, &after))
	if before.Ino == after.Ino {
		t.Fatalf("%s kept its inode", path)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
