// SPDX-License-Identifier: Apache-2.0

package gen_test

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/rtpolicy"
	"github.com/intactsec/intact/rtpolicy/gen"
	"github.com/intactsec/intact/sig"
)

func sum(s string) string {
	d := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(d[:])
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFromTree(t *testing.T) {
	root := t.TempDir()
	write(t, root+"/usr/bin/a", "a")
	write(t, root+"/usr/lib/x/b.so", "b")
	write(t, root+"/usr/bin/signed", "signed")
	if err := os.Symlink("a", root+"/usr/bin/link"); err != nil {
		t.Fatal(err)
	}
	key, _ := sig.GenerateKey("ec-p256")
	certDER, _ := sig.CreateCertificate(key, "vendor", time.Hour)
	cert, _ := x509.ParseCertificate(certDER)
	id, _ := sig.KeyID(key.Public())
	d := sha256.Sum256([]byte("signed"))
	s, _ := sig.SignDigest(key, id, digest.SHA256, d[:])
	haveXattr := xattr.Set(root+"/usr/bin/signed", xattr.IMA(true), s.Marshal()) == nil

	p, rep, err := gen.FromTree([]string{root}, gen.Options{Name: "img", Strip: root, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"/usr/bin/a": {sum("a")}, "/usr/lib/x/b.so": {sum("b")}, "/usr/bin/signed": {sum("signed")}}
	if len(p.Digests) != 3 || rep.Files != 3 || rep.Skipped != 0 {
		t.Errorf("digests %v report %+v", p.Digests, rep)
	}
	for path, w := range want {
		if got := p.Digests[path]; len(got) != 1 || got[0] != w[0] {
			t.Errorf("%s: %v, want %v", path, got, w)
		}
	}
	// With the vendor's certificate and TrustSigned, the signed file is left
	// to its signature, and the policy carries the key.
	if !haveXattr {
		t.Log("no user xattrs here: signature trust not tested")
		return
	}
	p, rep, err = gen.FromTree([]string{root + "/usr"}, gen.Options{Strip: root, Certs: []*x509.Certificate{cert}, TrustSigned: true, UserXattr: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, listed := p.Digests["/usr/bin/signed"]; listed || rep.Signed != 1 || len(p.Keys) != 1 || len(p.Digests) != 2 {
		t.Errorf("trust signed: digests %v keys %d report %+v", p.Digests, len(p.Keys), rep)
	}
	// The policy accepts the signed file's ima-sig record by its key.
	c, err := rtpolicy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := mlog.NewRecord(10, mlog.TemplateIMASig, mlog.FileMeasurement{Algo: digest.SHA256, Digest: d[:], Path: "/usr/bin/signed", Sig: s.Marshal()}, digest.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Evaluate(0, &r); f != nil {
		t.Errorf("signed record: %v", f)
	}
	// Without TrustSigned, the key is added and the file listed too.
	p, rep, _ = gen.FromTree([]string{root + "/usr"}, gen.Options{Strip: root, Certs: []*x509.Certificate{cert}, UserXattr: true})
	if len(p.Digests) != 3 || rep.Signed != 0 || len(p.Keys) != 1 {
		t.Errorf("certs without trust: %v %+v", p.Digests, rep)
	}
}

func TestFromTreeMissing(t *testing.T) {
	if _, _, err := gen.FromTree([]string{filepath.Join(t.TempDir(), "none")}, gen.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
}

// A fake dpkg database: two packages, one file changed since installation,
// a directory symlink (merged /usr), a file removed, a diverted symlink.
func TestFromDpkgFake(t *testing.T) {
	root := t.TempDir()
	admin := t.TempDir()
	write(t, root+"/usr/bin/tool", "tool")
	write(t, root+"/usr/bin/changed", "changed after install")
	write(t, root+"/usr/lib/libz.so.1", "libz")
	write(t, root+"/etc/tool.conf", "conf")
	if err := os.Symlink("usr/bin", root+"/bin"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool", root+"/usr/bin/tool-alias"); err != nil {
		t.Fatal(err)
	}
	md5hex := func(s string) string { d := md5.Sum([]byte(s)); return hex.EncodeToString(d[:]) }
	write(t, admin+"/info/tool.list", "/.\n/bin\n/bin/tool\n/usr/bin/changed\n/usr/bin/tool-alias\n/usr/bin/removed\n/etc/tool.conf\n")
	write(t, admin+"/info/tool.md5sums", md5hex("tool")+"  bin/tool\n"+md5hex("as installed")+"  usr/bin/changed\n")
	write(t, admin+"/info/zlib1g:amd64.list", "/usr/lib/libz.so.1\n")
	write(t, admin+"/info/zlib1g:amd64.md5sums", md5hex("libz")+"  usr/lib/libz.so.1\n")

	p, rep, err := gen.FromDpkg(gen.DpkgOptions{AdminDir: admin, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/usr/bin/tool": sum("tool"), "/usr/lib/libz.so.1": sum("libz"), "/etc/tool.conf": sum("conf")}
	if len(p.Digests) != len(want) {
		t.Errorf("digests %v", p.Digests)
	}
	for path, w := range want {
		if got := p.Digests[path]; len(got) != 1 || got[0] != w {
			t.Errorf("%s: %v, want %s", path, got, w)
		}
	}
	if rep.Modified != 1 || rep.Skipped != 1 || !strings.Contains(strings.Join(rep.Problems, "\n"), "/usr/bin/changed: content differs") {
		t.Errorf("report %+v", rep)
	}
	// Package filter, with and without the architecture.
	p, _, err = gen.FromDpkg(gen.DpkgOptions{AdminDir: admin, Root: root, Packages: []string{"zlib1g"}})
	if err != nil || len(p.Digests) != 1 {
		t.Errorf("zlib1g only: %v %v", p.Digests, err)
	}
	if _, _, err := gen.FromDpkg(gen.DpkgOptions{AdminDir: admin, Root: root, Packages: []string{"nosuch"}}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown package: %v", err)
	}
}

// The real dpkg database, one package: every listed file has the digest of
// the installed file, all md5sums match (a fresh system), and the paths
// are as the kernel records them (no /bin/ on merged /usr).
func TestFromDpkgCoreutils(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/info/coreutils.list"); err != nil {
		t.Skip("no dpkg database with coreutils")
	}
	p, rep, err := gen.FromDpkg(gen.DpkgOptions{Packages: []string{"coreutils"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files < 50 {
		t.Fatalf("only %d files: %+v", rep.Files, rep)
	}
	t.Logf("coreutils: %d files, %d modified, %d skipped", rep.Files, rep.Modified, rep.Skipped)
	catDigest := ""
	for path, list := range p.Digests {
		if strings.HasPrefix(path, "/bin/") {
			if fi, err := os.Lstat("/bin"); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				t.Errorf("%s: listed through the /bin symlink", path)
			}
		}
		if strings.HasSuffix(path, "/cat") {
			catDigest = list[0]
		}
	}
	b, err := os.ReadFile("/usr/bin/cat")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(b)
	if catDigest != "sha256:"+hex.EncodeToString(d[:]) {
		t.Errorf("cat: %q", catDigest)
	}
}
