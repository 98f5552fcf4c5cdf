// SPDX-License-Identifier: Apache-2.0

// Command intactd-bench measures what intactd costs: the time to exec a
// small binary and to open (and read) a small file on a watched mount,
// with no daemon and under intactd with a warm and a cold cache, printed
// side by side in one run.
//
//	go run ./bench/intactd            (as root)
//
// It re-executes itself under `timeout -s KILL` and `unshare -m
// --propagation private`, mounts a loop ext4 image under a temporary
// directory in that private mount namespace, and lets intactd watch only
// that mount. The daemon is its child and is stopped at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const envChild = "INTACT_BENCH_CHILD"

func main() {
	n := flag.Int("n", 300, "timed iterations per measurement")
	cold := flag.Int("cold", 100, "files for the cold-cache measurements")
	bin := flag.String("bin", "", "directory with intactd and intact (default: go build them)")
	flag.Parse()
	if err := run(*n, *cold, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "intactd-bench: error:", err)
		os.Exit(1)
	}
}

func run(n, cold int, bin string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (fanotify permission events, loop mounts)")
	}
	if os.Getenv(envChild) == "" {
		if bin == "" {
			dir, err := os.MkdirTemp("", "intactd-bench-bin-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			for _, pkg := range []string{"./cmd/intactd", "./cmd/intact"} {
				if out, err := exec.Command("go", "build", "-o", dir, pkg).CombinedOutput(); err != nil {
					return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				}
			}
			bin = dir
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command("timeout", "-s", "KILL", "600", "unshare", "-m", "--propagation", "private",
			self, "-n", fmt.Sprint(n), "-cold", fmt.Sprint(cold), "-bin", bin)
		cmd.Env = append(os.Environ(), envChild+"=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	return bench(n, cold, bin)
}

func sh(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func bench(n, cold int, bin string) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private mounts: %w", err)
	}
	tmp, err := os.MkdirTemp("", "intactd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mnt := filepath.Join(tmp, "mnt")
	os.Mkdir(mnt, 0o755)
	img := filepath.Join(tmp, "fs.img")
	for _, c := range [][]string{{"truncate", "-s", "256M", img}, {"mkfs.ext4", "-q", "-O", "^has_journal", img}, {"mount", "-o", "loop", img, mnt}} {
		if err := sh(c[0], c[1:]...); err != nil {
			return err
		}
	}
	defer syscall.Unmount(mnt, syscall.MNT_DETACH)
	key, cert := filepath.Join(tmp, "k.pem"), filepath.Join(tmp, "c.der")
	if err := sh(filepath.Join(bin, "intact"), "keygen", "--key", key, "--cert", cert); err != nil {
		return err
	}
	trueBin, err := os.ReadFile("/bin/true")
	if err != nil {
		return err
	}
	var files []string
	mk := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(mnt, name)
		os.WriteFile(p, b, mode)
		files = append(files, p)
		return p
	}
	exe, data := mk("true", trueBin, 0o755), mk("data", []byte("a small configuration file\n"), 0o644)
	var coldExe, coldData []string
	for i := range cold {
		coldExe = append(coldExe, mk(fmt.Sprintf("true-%d", i), trueBin, 0o755))
		coldData = append(coldData, mk(fmt.Sprintf("data-%d", i), []byte(fmt.Sprintf("file %d\n", i)), 0o644))
	}
	if err := sh(filepath.Join(bin, "intact"), append([]string{"sign", "--key", key}, files...)...); err != nil {
		return err
	}

	measure(n/4+1, exe, data) // warm up page cache and CPU
	base1 := measure(n, exe, data)

	pol := filepath.Join(tmp, "policy")
	os.WriteFile(pol, []byte("appraise func=BPRM_CHECK appraise_type=imasig\nappraise func=FILE_CHECK appraise_type=imasig\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := exec.CommandContext(ctx, filepath.Join(bin, "intactd"), "--watch", mnt, "--policy", pol, "--cert", cert,
		"--state-dir", filepath.Join(tmp, "state"), "--log-level", "error")
	d.Stderr = os.Stderr
	if err := d.Start(); err != nil {
		return err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			d.Process.Signal(syscall.SIGTERM)
			d.Wait()
		}
	}
	defer stop()
	time.Sleep(500 * time.Millisecond)
	if err := execOnce(exe); err != nil {
		return fmt.Errorf("signed binary under intactd: %w", err)
	}
	warm := measure(n, exe, data)
	coldR := result{exec: timeEach(coldExe, execOnce), open: timeEach(coldData, openOnce)}
	stop()
	// The baseline is measured before and after the daemon runs, and
	// averaged, so that drift on a shared machine does not favour a side.
	base2 := measure(n, exe, data)
	base := result{(base1.exec + base2.exec) / 2, (base1.open + base2.open) / 2}

	fmt.Printf("intactd benchmark: %d warm iterations, %d cold files, medians (kernel %s)\n\n", n, cold, kernel())
	fmt.Printf("%-22s %12s %14s %14s %10s\n", "operation", "no daemon", "intactd warm", "intactd cold", "warm +%")
	row := func(name string, b, w, c time.Duration) {
		fmt.Printf("%-22s %12s %14s %14s %9.1f%%\n", name, b.Round(100*time.Nanosecond), w.Round(100*time.Nanosecond), c.Round(100*time.Nanosecond), 100*(float64(w)/float64(b)-1))
	}
	row("exec /bin/true copy", base.exec, warm.exec, coldR.exec)
	row("open+read small file", base.open, warm.open, coldR.open)
	return nil
}

type result struct{ exec, open time.Duration }

// measure interleaves exec and open timings.
func measure(n int, exe, data string) result {
	var ex, op []time.Duration
	for range n {
		t := time.Now()
		execOnce(exe)
		ex = append(ex, time.Since(t))
		t = time.Now()
		openOnce(data)
		op = append(op, time.Since(t))
	}
	return result{median(ex), median(op)}
}

func timeEach(paths []string, f func(string) error) time.Duration {
	var ds []time.Duration
	for _, p := range paths {
		t := time.Now()
		f(p)
		ds = append(ds, time.Since(t))
	}
	return median(ds)
}

func execOnce(p string) error { return exec.Command(p).Run() }

func openOnce(p string) error {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	var b [64]byte
	syscall.Read(fd, b[:])
	return syscall.Close(fd)
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func kernel() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
