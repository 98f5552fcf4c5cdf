// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/testenv"
)

func TestIoctlNumbers(t *testing.T) {
	if fsIocGetVersion != 0x80087601 && fsIocGetVersion != 0x80047601 {
		t.Errorf("FS_IOC_GETVERSION = %#x", fsIocGetVersion)
	}
	if fsIocGetFSUUID != 0x80111500 {
		t.Errorf("FS_IOC_GETFSUUID = %#x, want 0x80111500", fsIocGetFSUUID)
	}
}

// TestReadMisc compares with what lsattr -v (FS_IOC_GETVERSION through
// e2fsprogs) and stat report, on the test's own file system.
func TestReadMisc(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := ReadMisc(f, false)
	if errors.Is(err, ErrNoGeneration) {
		t.Skipf("file system of %s: %v", p, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if m.Ino != st.Ino || m.UID != st.Uid || m.GID != st.Gid || m.Mode != 0o100640 {
		t.Errorf("ReadMisc = %+v, stat %+v", m, st)
	}
	if lsattr, err := exec.LookPath("lsattr"); err == nil {
		out, err := exec.Command(lsattr, "-v", p).Output()
		if err == nil {
			g, err := strconv.ParseUint(strings.Fields(string(out))[0], 10, 32)
			if err != nil || uint32(g) != m.Generation {
				t.Errorf("generation = %d, lsattr -v says %q", m.Generation, out)
			}
		}
	}
	pm, err := ReadMisc(f, true)
	if err != nil || pm.Generation != 0 || pm.Ino != m.Ino {
		t.Errorf("ReadMisc(portable) = %+v, %v", pm, err)
	}
}

// TestFSUUID compares with findmnt (blkid) where it knows the UUID.
func TestFSUUID(t *testing.T) {
	f, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := FSUUID(f)
	if err != nil {
		t.Fatalf("FSUUID: %v", err)
	}
	if len(u) != UUIDSize {
		t.Fatalf("FSUUID = %x", u)
	}
	out, _ := exec.Command("findmnt", "-n", "-o", "UUID", "--target", f.Name()).Output()
	if want := strings.TrimSpace(string(out)); want != "" {
		if got := FormatUUID(u); got != want {
			t.Errorf("FSUUID = %s, findmnt says %s", got, want)
		}
	}
}

// TestUUIDByDevice: the fallback finds the UUID link whose block device is
// the file's device, and ignores links to other devices and short ids.
func TestUUIDByDevice(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	dev, other := filepath.Join(dir, "dev"), filepath.Join(dir, "other")
	if err := unix.Mknod(dev, unix.S_IFBLK|0o600, int(st.Dev)); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	if err := unix.Mknod(other, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 250))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	links := filepath.Join(dir, "by-uuid")
	os.Mkdir(links, 0o755)
	want := "0f0e0d0c-0b0a-0908-0706-050403020100"
	os.Symlink(other, filepath.Join(links, "11111111-2222-3333-4444-555555555555"))
	os.Symlink(dev, filepath.Join(links, "ABCD-1234")) // vfat-style id: not 16 bytes
	os.Symlink(dev, filepath.Join(links, want))
	u, ok := uuidByDevice(links, st.Dev)
	if !ok || FormatUUID(u) != want {
		t.Errorf("uuidByDevice = %x, %v; want %s", u, ok, want)
	}
	if u, ok := uuidByDevice(links, unix.Mkdev(7, 251)); ok {
		t.Errorf("uuidByDevice for an unlisted device = %x", u)
	}
}
