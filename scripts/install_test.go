package scripts

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/testenv"
)

// headRev is the repository's HEAD, abbreviated as --version prints it, or
// "" when the build cannot be stamped with it: no git, or a "git worktree"
// checkout (Go stamps the revision only where .git is a directory; a
// clone, as in CI, is).
func headRev(t *testing.T) string {
	if fi, err := os.Stat("../.git"); err != nil || !fi.IsDir() {
		t.Logf("../.git is not a directory: go build does not stamp the revision here, --version's is not checked")
		return ""
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		t.Logf("no git revision to compare --version with: %v", err)
		return ""
	}
	return strings.TrimSpace(string(out))
}

func runOut(t *testing.T, ctx context.Context, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// checkVersion runs NAME --version as found on PATH and checks that it
// names the program and the revision it was built from.
func checkVersion(t *testing.T, ctx context.Context, path, name, rev string) {
	t.Helper()
	bin := ""
	for _, dir := range filepath.SplitList(path) {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode()&0o111 != 0 {
			bin = filepath.Join(dir, name)
			break
		}
	}
	if bin == "" {
		t.Fatalf("%s is not on PATH %s", name, path)
	}
	// From PATH, as a user types it: the shell looks it up.
	out := runOut(t, ctx, []string{"PATH=" + path}, "/bin/sh", "-c", name+" --version")
	if !strings.HasPrefix(out, name+" ") || (rev != "" && !strings.Contains(out, "rev "+rev)) {
		t.Errorf("%s --version = %q, want %q and rev %s", bin, out, name, rev)
	}
}

// checkNoSimulator runs bin with args (a --tpm sim) and wants exit 2 and
// the error that names the build tag.
func checkNoSimulator(t *testing.T, ctx context.Context, bin string, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	name := filepath.Base(bin)
	want := name + ": error: --tpm sim: this build has no TPM simulator (build with -tags intact_sim)"
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), want) || !strings.Contains(string(out), name+": hint: ") {
		t.Errorf("installed %s %s: %v, want exit 2 and %q and a hint; output:\n%s", name, strings.Join(args, " "), err, want, out)
	}
}

// scripts/install.sh --destdir installs every listed file with its mode,
// the binaries run and name their revision, and --uninstall removes every
// file it installed. As root (in CI) the same tree is then packed as a
// .deb (scripts/package.sh --stage) and installed on this machine
// (debPackage).
func TestInstall(t *testing.T) {
	testenv.RequireTool(t, "go")
	testenv.RequireTool(t, "bash")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dest := t.TempDir()
	script, _ := filepath.Abs("install.sh")
	runOut(t, ctx, nil, script, "--destdir", dest)
	list := strings.Fields(runOut(t, ctx, nil, script, "--list"))
	if len(list) < 20 {
		t.Fatalf("install.sh --list: %v", list)
	}
	for _, p := range list {
		fi, err := os.Stat(filepath.Join(dest, p))
		if err != nil {
			t.Errorf("%s not installed: %v", p, err)
			continue
		}
		want := fs.FileMode(0o644)
		if strings.Contains(p, "/bin/") || strings.Contains(p, "/sbin/") {
			want = 0o755
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	// The units name the installed binaries.
	for _, u := range []string{"intactd.service", "intact-verifier.service"} {
		b, err := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system", u))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if exe, ok := strings.CutPrefix(l, "ExecStart="); ok {
				// The binary and every file it is given under /usr.
				for _, arg := range strings.Fields(exe) {
					if strings.HasPrefix(arg, "/usr/") {
						if _, err := os.Stat(filepath.Join(dest, arg)); err != nil {
							t.Errorf("%s: ExecStart names %s, not installed", u, arg)
						}
					}
				}
			}
		}
	}
	rev := headRev(t)
	path := filepath.Join(dest, "usr/bin") + ":" + filepath.Join(dest, "usr/sbin")
	for _, name := range []string{"intact", "intactd", "intact-verifier"} {
		checkVersion(t, ctx, path, name, rev)
	}
	// Release binaries have no TPM simulator (no -tags intact_sim).
	for _, c := range [][]string{
		{"usr/bin/intact", "tpm", "pcrs", "--tpm", "sim"},
		{"usr/sbin/intactd", "--tpm", "sim", "--watch", t.TempDir(), "--policy", "tcb", "--mode", "log", "--state-dir", t.TempDir()},
	} {
		checkNoSimulator(t, ctx, filepath.Join(dest, c[0]), c[1:]...)
	}

	t.Run("deb", func(t *testing.T) { debPackage(t, ctx, dest, rev) })

	runOut(t, ctx, nil, script, "--uninstall", "--destdir", dest)
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind by --uninstall: %s", p)
		}
		return nil
	})
	for _, d := range []string{"usr/share/doc/intact", "usr/share/intact"} {
		if _, err := os.Stat(filepath.Join(dest, d)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("left behind by --uninstall: directory %s", d)
		}
	}
}

// debPackage builds the .deb from the staged tree with scripts/package.sh
// (nfpm), installs it on this machine with dpkg, runs its binaries from
// PATH, has systemd-analyze verify both units, and checks that dpkg
// --purge leaves nothing of it behind. It changes the real system, so it
// runs only as root (in CI), and purges the package however it ends.
func debPackage(t *testing.T, ctx context.Context, stage, rev string) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"git", "dpkg", "dpkg-deb", "dpkg-query", "systemd-analyze"} {
		testenv.RequireTool(t, tool)
	}
	if exec.Command("dpkg-query", "-W", "intact").Run() == nil {
		t.Fatal("a package named intact is already installed here: this test installs and purges it, so it will not run beside it")
	}
	out := t.TempDir()
	script, _ := filepath.Abs("package.sh")
	deb := lastLine(runOut(t, ctx, nil, script, "--stage", stage, out))
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("package.sh printed %q, want the .deb", deb)
	}
	// The package's paths, and which of them exist already (shared
	// directories such as /usr/bin): after the purge exactly those remain.
	var paths []string
	listing := runOut(t, ctx, nil, "dpkg-deb", "-c", deb)
	for _, l := range strings.Split(listing, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/"); p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) < 20 {
		t.Fatalf("dpkg-deb -c: %d paths:\n%s", len(paths), listing)
	}
	// And what the daemons would create if started: the package must not.
	paths = append(paths, "/etc/intact", "/var/lib/intactd", "/var/lib/intact-verifier")
	before := map[string]bool{}
	for _, p := range paths {
		if fi, err := os.Lstat(p); err == nil {
			if !fi.IsDir() {
				t.Fatalf("%s exists before the package is installed: refusing to overwrite it", p)
			}
			before[p] = true
		}
	}
	t.Cleanup(func() {
		// However the test ends: the package goes.
		if exec.Command("dpkg-query", "-W", "intact").Run() == nil {
			if out, err := exec.Command("dpkg", "--purge", "intact").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg --purge intact: %v\n%s", err, out)
			}
		}
	})
	runOut(t, ctx, []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", "-i", deb)
	if st := runOut(t, ctx, nil, "dpkg-query", "-W", "-f", "${Status}", "intact"); st != "install ok installed" {
		t.Fatalf("dpkg status %q", st)
	}
	for _, name := range []string{"intact", "intactd", "intact-verifier"} {
		checkVersion(t, ctx, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", name, rev)
	}
	// systemd-analyze verify: both units, their binaries present. It runs
	// man for the units' man: documentation when man is installed.
	args := []string{"verify"}
	if _, err := exec.LookPath("man"); err != nil {
		t.Log("man is not installed: systemd-analyze verify --man=no")
		args = append(args, "--man=no")
	}
	args = append(args, "/usr/lib/systemd/system/intactd.service", "/usr/lib/systemd/system/intact-verifier.service")
	vout, err := exec.CommandContext(ctx, "systemd-analyze", args...).CombinedOutput()
	if err != nil || bytes.Contains(vout, []byte("intact")) {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, vout)
	}
	// The shell completion loads.
	if out := runOut(t, ctx, nil, "bash", "-c", "source /usr/share/bash-completion/completions/intact && complete -p intact"); !strings.Contains(out, "_intact") {
		t.Errorf("bash completion: %q", out)
	}
	runOut(t, ctx, nil, "dpkg", "--purge", "intact")
	for _, p := range paths {
		_, err := os.Lstat(p)
		if exists := err == nil; exists != before[p] {
			t.Errorf("%s: existed before the install %v, after the purge %v", p, before[p], exists)
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}
