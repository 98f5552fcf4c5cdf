// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/sig"
)

type testKey struct {
	signer crypto.Signer
	keyID  uint32
	keys   *sig.Keyring
}

func newTestKey(t testing.TB) *testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := sig.CreateCertificate(k, "manifest test", 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sig.KeyID(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &testKey{signer: k, keyID: id, keys: sig.NewKeyring(cert)}
}

func (k *testKey) create(t testing.TB, roots []string, rules *Rules) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := Create(&buf, roots, CreateOptions{
		ScanOptions: ScanOptions{Algo: digest.SHA256, Xattrs: []string{"user.test", "user.zz"}, Rules: rules},
		Signer:      k.signer, KeyID: k.keyID,
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return buf.Bytes()
}

func (k *testKey) check(t testing.TB, m []byte, dirFor func(string) string) (*Result, error) {
	t.Helper()
	v, err := Verify(bytes.NewReader(m), k.keys)
	if err != nil {
		return nil, err
	}
	if dirFor == nil {
		dirFor = func(r string) string { return r }
	}
	return Check(v, dirFor, ScanOptions{}, nil)
}

func write(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree makes a small tree with every type a test can make without root.
func tree(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	write(t, d+"/bin/tool", "#!/bin/sh\necho tool\n")
	write(t, d+"/bin/other", "other")
	write(t, d+"/etc/conf", "a=1\n")
	write(t, d+"/a.b", "dot")
	write(t, d+"/a/b", "slash")
	if err := os.Symlink("../bin/tool", d+"/etc/link"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(d+"/etc/fifo", 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func reported(res *Result) map[string]string {
	out := map[string]string{}
	for _, d := range res.Differences {
		var attrs []string
		for _, c := range d.Changes {
			attrs = append(attrs, c.Attr+"="+c.Old+">"+c.New)
		}
		out[d.Path] = string(d.Status) + " " + strings.Join(attrs, ";")
	}
	return out
}

func TestUnchangedAndCanonical(t *testing.T) {
	k := newTestKey(t)
	d := tree(t)
	m1 := k.create(t, []string{d}, nil)
	m2 := k.create(t, []string{d}, nil)
	// ECDSA signatures are randomized: the bodies must be byte-identical
	body := func(m []byte) []byte { return m[:bytes.LastIndex(m, []byte("\nsignature "))] }
	if !bytes.Equal(body(m1), body(m2)) {
		t.Fatalf("the same tree gave different manifests:\n%s\n%s", m1, m2)
	}
	res, err := k.check(t, m1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Differences) != 0 || len(res.Errors) != 0 {
		t.Fatalf("unchanged tree reported: %+v %v", res.Differences, res.Errors)
	}
	if res.Entries != 11 || res.Seen != 11 {
		t.Fatalf("entries %d seen %d, want 11", res.Entries, res.Seen)
	}
	// DFS order: /a before /a/b before /a.b
	s := string(m1)
	if !(strings.Index(s, "\n/a d") < strings.Index(s, "\n/a/b f") && strings.Index(s, "\n/a/b f") < strings.Index(s, "\n/a.b f")) {
		t.Fatalf("not in walk order:\n%s", s)
	}
}

func TestEveryChangeNamed(t *testing.T) {
	k := newTestKey(t)
	d := tree(t)
	if err := unix.Setxattr(d+"/bin/other", "user.test", []byte("v1"), 0); err != nil {
		t.Skipf("user xattrs not supported here: %v", err)
	}
	m := k.create(t, []string{d}, nil)

	write(t, d+"/bin/tool", "#!/bin/sh\necho evil!\n")                   // content and size
	must(t, unix.Chmod(d+"/etc/conf", 0o4755))                           // mode
	must(t, os.Remove(d+"/a.b"))                                         // removed
	write(t, d+"/bin/new", "dropped in")                                 // added
	must(t, os.Remove(d+"/etc/link"))                                    // symlink target
	must(t, os.Symlink("/etc/shadow", d+"/etc/link"))                    //
	must(t, unix.Setxattr(d+"/bin/other", "user.test", []byte("v2"), 0)) // xattr changed
	must(t, unix.Setxattr(d+"/etc/conf", "user.zz", []byte("x"), 0))     // xattr added
	must(t, os.Remove(d+"/a/b"))                                         // file replaced by a directory
	must(t, os.Mkdir(d+"/a/b", 0o755))

	res, err := k.check(t, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := reported(res)
	want := map[string]string{
		"/bin/tool":  "changed content=",
		"/etc/conf":  "changed mode=0644>4755;xattr user.zz=absent>eA==",
		"/a.b":       "removed ",
		"/bin/new":   "added ",
		"/etc/link":  "changed target=../bin/tool>/etc/shadow",
		"/bin/other": "changed xattr user.test=djE=>djI=",
		"/a/b":       "changed type=file>directory",
	}
	for p, w := range want {
		g, ok := got[p]
		if !ok || !strings.HasPrefix(g, w) {
			t.Errorf("%s: got %q, want %q", p, g, w)
		}
	}
	if g := got["/bin/tool"]; !strings.Contains(g, "size=20>21") {
		t.Errorf("/bin/tool: size change not named: %q", g)
	}
	if len(got) != len(want) {
		t.Errorf("reported %d entries, want %d: %v", len(got), len(want), got)
	}
	if res.Added != 1 || res.Removed != 1 || res.Changed != 5 {
		t.Errorf("counts added %d removed %d changed %d", res.Added, res.Removed, res.Changed)
	}
}

func TestOwnerChange(t *testing.T) {
	testenv.RequireRoot(t)
	k := newTestKey(t)
	d := tree(t)
	m := k.create(t, []string{d}, nil)
	must(t, os.Lchown(d+"/bin/tool", 1234, 0))
	must(t, os.Lchown(d+"/etc/conf", 0, 4321))
	res, err := k.check(t, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := reported(res)
	if got["/bin/tool"] != "changed owner=0>1234" || got["/etc/conf"] != "changed group=0>4321" {
		t.Fatalf("got %v", got)
	}
}

func TestSecurityXattrs(t *testing.T) {
	testenv.RequireRoot(t)
	k := newTestKey(t)
	d := tree(t)
	var buf bytes.Buffer
	_, err := Create(&buf, []string{d}, CreateOptions{
		ScanOptions: ScanOptions{Algo: digest.SHA256, Xattrs: DefaultXattrs},
		Signer:      k.signer, KeyID: k.keyID,
	})
	must(t, err)
	capV2 := []byte{1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	must(t, unix.Setxattr(d+"/bin/tool", "security.capability", capV2, 0))
	res, err := k.check(t, buf.Bytes(), nil)
	must(t, err)
	if g := reported(res)["/bin/tool"]; !strings.HasPrefix(g, "changed xattr security.capability=absent>") {
		t.Fatalf("capability not reported: %v", reported(res))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOneByteChangedFailsSignature(t *testing.T) {
	k := newTestKey(t)
	d := tree(t)
	m := k.create(t, []string{d}, nil)
	i := bytes.Index(m, []byte(" 0644 "))
	bad := slices.Clone(m)
	bad[i+3] = '7' // 0644 -> 0744: still well-formed
	if _, err := Parse(bytes.NewReader(bad), nil); err != nil {
		t.Fatalf("the mangled manifest should still parse: %v", err)
	}
	v, err := Verify(bytes.NewReader(bad), k.keys)
	if !errors.Is(err, ErrSignature) || v != nil {
		t.Fatalf("Verify of a changed manifest: %v, %v", v, err)
	}
	// another key's certificate does not verify it either
	other := newTestKey(t)
	if _, err := Verify(bytes.NewReader(m), other.keys); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify with another key: %v", err)
	}
}

// A manifest that changes between the verifying read and the reading of
// entries reports nothing.
func TestChangedBetweenReads(t *testing.T) {
	k := newTestKey(t)
	d := tree(t)
	m := k.create(t, []string{d}, nil)
	r := &swapReader{first: m, then: bytes.Replace(m, []byte(" 0644 "), []byte(" 0744 "), 1)}
	v, err := Verify(r, k.keys)
	must(t, err)
	res, err := Check(v, func(s string) string { return s }, ScanOptions{}, nil)
	if !errors.Is(err, ErrChanged) || res != nil {
		t.Fatalf("Check over a manifest changed between reads: %v, %v", res, err)
	}
}

// swapReader serves first until the first Seek back to 0, then then.
type swapReader struct {
	first, then []byte
	r           *bytes.Reader
	seeks       int
}

func (s *swapReader) Read(p []byte) (int, error) {
	if s.r == nil {
		s.r = bytes.NewReader(s.first)
	}
	return s.r.Read(p)
}

func (s *swapReader) Seek(off int64, whence int) (int64, error) {
	s.seeks++
	s.r = bytes.NewReader(s.then)
	return s.r.Seek(off, whence)
}

func TestOddNamesExact(t *testing.T) {
	k := newTestKey(t)
	d := t.TempDir()
	names := []string{"new\nline", "bad\xff\xfename", "bad\xfe\xffname", "sp ace", "per%cent", "tab\t", "ünï"}
	for _, n := range names {
		write(t, filepath.Join(d, n), n)
	}
	m := k.create(t, []string{d}, nil)
	if bytes.Count(m, []byte("\n")) != 5+len(names)+1+2 { // header 5 (magic, hash, xattrs, filesystems, root), entries, root entry, end, signature
		t.Fatalf("a name broke the line structure:\n%q", m)
	}
	for _, n := range names {
		must(t, os.Remove(filepath.Join(d, n)))
	}
	res, err := k.check(t, m, nil)
	must(t, err)
	var removed []string
	for _, df := range res.Differences {
		removed = append(removed, df.Path)
	}
	var want []string
	for _, n := range names {
		want = append(want, "/"+n)
	}
	slices.Sort(removed)
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %q, want %q", removed, want)
	}
}

func TestRules(t *testing.T) {
	k := newTestKey(t)
	d := tree(t)
	rules, err := ParseRules("rules", "# test\n!"+d+"/etc\n"+d+"/bin -content\n"+d+"/bin/tool content\n")
	must(t, err)
	m := k.create(t, []string{d}, rules)
	if bytes.Contains(m, []byte("/etc/")) {
		t.Fatalf("excluded subtree recorded:\n%s", m)
	}
	write(t, d+"/bin/other", "changed content, not tracked")
	write(t, d+"/etc/new", "excluded")
	must(t, os.Chmod(d+"/bin/tool", 0o700)) // only content tracked: not reported
	res, err := k.check(t, m, nil)
	must(t, err)
	got := reported(res)
	if g := got["/bin/other"]; g != "changed size=5>28" {
		t.Errorf("/bin/other: %q (content untracked, size tracked)", g)
	}
	if _, ok := got["/bin/tool"]; ok {
		t.Errorf("/bin/tool: mode not tracked, reported %q", got["/bin/tool"])
	}
	if _, ok := got["/etc/new"]; ok || len(got) != 1 {
		t.Errorf("reported %v", got)
	}
	// the rules are part of the signed manifest
	if !bytes.Contains(m, []byte("\nrule !")) {
		t.Fatalf("rules not recorded:\n%s", m)
	}
}

func TestCheckOtherDir(t *testing.T) {
	k := newTestKey(t)
	d := tree(t)
	m := k.create(t, []string{d}, nil)
	copyDir := t.TempDir()
	must(t, os.Rename(d, copyDir+"/moved"))
	res, err := k.check(t, m, func(string) string { return copyDir + "/moved" })
	must(t, err)
	if len(res.Differences) != 0 {
		t.Fatalf("moved tree: %v", reported(res))
	}
}

func TestMultipleRoots(t *testing.T) {
	k := newTestKey(t)
	d1, d2 := tree(t), tree(t)
	m := k.create(t, []string{d2, d1}, nil)
	must(t, os.Remove(d2+"/bin/other"))
	res, err := k.check(t, m, nil)
	must(t, err)
	if len(res.Differences) != 1 || res.Differences[0].Root != d2 || res.Differences[0].Path != "/bin/other" {
		t.Fatalf("got %+v", res.Differences)
	}
	// nested roots are refused
	var buf bytes.Buffer
	if _, err := Create(&buf, []string{d1, d1 + "/bin"}, CreateOptions{ScanOptions: ScanOptions{Algo: digest.SHA256}, Signer: k.signer, KeyID: k.keyID}); err == nil {
		t.Fatal("nested roots accepted")
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "a b", "%", "\x00\xff\n", "ü", "a=b,c"} {
		e := Escape(s)
		if strings.ContainsAny(e, " \n") {
			t.Errorf("Escape(%q) = %q has a separator", s, e)
		}
		u, err := Unescape(e)
		if err != nil || u != s {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", s, u, err)
		}
	}
	for _, bad := range []string{"%", "%4", "%zz", "%41", "%e2", "a b", "x\n"} {
		if _, err := Unescape(bad); err == nil {
			t.Errorf("Unescape(%q) accepted a non-canonical form", bad)
		}
	}
}

func TestComparePaths(t *testing.T) {
	order := []string{"/", "/a", "/a/b", "/a/b/c", "/a.b", "/a0", "/b", "/b\xff"}
	for i := range order {
		for j := range order {
			got := ComparePaths(order[i], order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("ComparePaths(%q, %q) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

// sample is a small well-formed manifest for the parser tests.
func sample(t testing.TB) ([]byte, *testKey) {
	k := newTestKey(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Algo: digest.SHA256, Xattrs: []string{"security.ima"}, Rules: []string{"!/r/x"}})
	must(t, err)
	must(t, w.Root("/r"))
	dig := bytes.Repeat([]byte{0xab}, 32)
	for _, e := range []*Entry{
		{Path: "/", Type: TypeDir, Has: AttrAll, Mode: 0o755},
		{Path: "/bin", Type: TypeDir, Has: AttrAll, Mode: 0o755, Xattrs: []Xattr{{"security.ima", []byte{4, 4, 1}}}},
		{Path: "/bin/sh", Type: TypeFile, Has: AttrAll, Mode: 0o4755, UID: 0, GID: 5, Size: 12, Digest: dig},
		{Path: "/dev", Type: TypeChar, Has: AttrAll, Mode: 0o600, Major: 1, Minor: 3},
		{Path: "/l", Type: TypeSymlink, Has: AttrAll, Mode: 0o777, Target: "../a b"},
		{Path: "/untracked", Type: TypeFile, Has: AttrMode},
	} {
		must(t, w.Add(e))
	}
	must(t, w.Sign(k.signer, k.keyID))
	return buf.Bytes(), k
}

func TestParseRejects(t *testing.T) {
	m, k := sample(t)
	if _, err := Verify(bytes.NewReader(m), k.keys); err != nil {
		t.Fatalf("sample: %v", err)
	}
	cases := map[string][]byte{
		"dotdot path":       bytes.Replace(m, []byte("/bin/sh f"), []byte("/../sh f"), 1),
		"dot path":          bytes.Replace(m, []byte("/bin/sh f"), []byte("/bin/. f"), 1),
		"double slash":      bytes.Replace(m, []byte("/bin/sh f"), []byte("/bin//h f"), 1),
		"out of order":      bytes.Replace(m, []byte("/dev c"), []byte("/abc c"), 1),
		"duplicate":         bytes.Replace(m, []byte("/dev c"), []byte("/bin c"), 1),
		"bad type":          bytes.Replace(m, []byte("/dev c"), []byte("/dev z"), 1),
		"lower hex escape":  bytes.Replace(m, []byte("../a%20b"), []byte("../a%2f"), 1),
		"uppercase digest":  bytes.Replace(m, []byte("abababab"), []byte("ABABABAB"), 1),
		"short digest":      bytes.Replace(m, []byte("abab "), []byte(" "), 1),
		"leading zero":      bytes.Replace(m, []byte(" 5 12 "), []byte(" 05 12 "), 1),
		"count":             bytes.Replace(m, []byte("\nend 6\n"), []byte("\nend 7\n"), 1),
		"no magic":          m[1:],
		"sha1":              bytes.Replace(m, []byte("hash sha256"), []byte("hash sha1"), 1),
		"trailing data":     append(slices.Clone(m), 'x'),
		"no signature":      m[:bytes.Index(m, []byte("signature "))],
		"entry before root": bytes.Replace(m, []byte("root /r\n"), nil, 1),
		"root not dir":      bytes.Replace(m, []byte("\n/ d "), []byte("\n/ f "), 1),
		"dir with size":     bytes.Replace(m, []byte("/bin d 0755 0 0 -"), []byte("/bin d 0755 0 0 9"), 1),
	}
	for name, b := range cases {
		if bytes.Equal(b, m) {
			t.Errorf("%s: the case did not change the sample", name)
			continue
		}
		if _, err := Parse(bytes.NewReader(b), nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse = %v, want ErrMalformed", name, err)
		}
	}
}

// Every truncation and every single-byte change of a manifest is refused
// by Verify (malformed or bad signature), never a panic, never accepted.
func TestMangling(t *testing.T) {
	m, k := sample(t)
	for n := 0; n < len(m); n++ {
		if _, err := Verify(bytes.NewReader(m[:n]), k.keys); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	for i := range m {
		for _, c := range []byte{0, ' ', '\n', '%', '/', 'a', '0', 0xff, m[i] ^ 1} {
			if c == m[i] {
				continue
			}
			b := slices.Clone(m)
			b[i] = c
			if _, err := Verify(bytes.NewReader(b), k.keys); err == nil {
				t.Fatalf("byte %d changed to %q: accepted", i, c)
			}
		}
	}
}

func TestHugeLineRefused(t *testing.T) {
	m, _ := sample(t)
	long := bytes.Repeat([]byte("a"), MaxLine+10)
	b := bytes.Replace(m, []byte("/untracked"), append([]byte("/u"), long...), 1)
	if _, err := Parse(bytes.NewReader(b), nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge line: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	m, _ := sample(f)
	f.Add(m)
	f.Add([]byte(Magic + "\nhash sha256\nxattrs -\nfilesystems one\nroot /\n/ d - - - - - -\nend 1\nsignature AwIE\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var entries []*Entry
		var roots []string
		got, err := Parse(bytes.NewReader(b), func(root string, e *Entry) error {
			if !validPath(e.Path) {
				t.Fatalf("invalid path %q handed out", e.Path)
			}
			entries = append(entries, e)
			roots = append(roots, root)
			return nil
		})
		if err != nil {
			return
		}
		// re-encode what was parsed: the same bytes up to the signature
		var buf bytes.Buffer
		w, err := NewWriter(&buf, got.Header)
		if err != nil {
			t.Fatalf("header that parsed does not write: %v", err)
		}
		cur := ""
		for i, e := range entries {
			if roots[i] != cur {
				cur = roots[i]
				if err := w.Root(cur); err != nil {
					t.Fatalf("root that parsed does not write: %v", err)
				}
			}
			if err := w.Add(e); err != nil {
				t.Fatalf("entry that parsed does not write: %v", err)
			}
		}
		must(t, w.write([]byte("end "+strconv.Itoa(len(entries))+"\n")))
		must(t, w.w.Flush())
		body := b[:bytes.LastIndex(b[:len(b)-1], []byte("\n"))+1]
		if !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("not canonical: parsed\n%q\nwrites\n%q", body, buf.Bytes())
		}
	})
}

// A user who swaps names in the tree while root records it (renameat2
// RENAME_EXCHANGE in a loop: a regular file exchanged with a symlink to a
// secret outside the tree, with a FIFO, with a symlink to /dev/zero; a
// directory with a symlink to a directory outside) never gets an outside
// file described under an in-tree name, and never hangs the walk.
func TestSwapRace(t *testing.T) {
	k := newTestKey(t)
	outside := t.TempDir()
	secret := "outside secret " + strings.Repeat("s", 100)
	write(t, outside+"/secret", secret)
	secretDigest := sha256hex(secret)

	d := t.TempDir()
	write(t, d+"/dir/f", "in tree")
	must(t, os.Symlink(outside+"/secret", d+"/dir/s"))
	must(t, syscall.Mkfifo(d+"/dir/p", 0o600))
	write(t, d+"/dir/h", "in tree h")
	must(t, os.Symlink("/dev/zero", d+"/dir/zero"))
	secret2 := "outside secret below a directory " + strings.Repeat("d", 100)
	write(t, outside+"/odir/x", secret2)
	write(t, d+"/dir/sub/x", "in tree sub/x")
	must(t, os.Symlink(outside+"/odir", d+"/dir/sublnk"))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			other := "s"
			if i%2 == 1 {
				other = "p"
			}
			unix.Renameat2(unix.AT_FDCWD, d+"/dir/f", unix.AT_FDCWD, d+"/dir/"+other, unix.RENAME_EXCHANGE)
			unix.Renameat2(unix.AT_FDCWD, d+"/dir/h", unix.AT_FDCWD, d+"/dir/zero", unix.RENAME_EXCHANGE)
			unix.Renameat2(unix.AT_FDCWD, d+"/dir/sub", unix.AT_FDCWD, d+"/dir/sublnk", unix.RENAME_EXCHANGE)
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	runs := 0
	for ; time.Now().Before(deadline) || runs < 50; runs++ {
		var buf bytes.Buffer
		finished := make(chan error, 1)
		go func() {
			_, err := Create(&buf, []string{d}, CreateOptions{
				ScanOptions: ScanOptions{Algo: digest.SHA256}, Signer: k.signer, KeyID: k.keyID,
			})
			finished <- err
		}()
		select {
		case err := <-finished:
			if err != nil {
				continue // an entry vanished mid-walk: refused, nothing written
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("run %d: the walk hangs", runs)
		}
		for _, sum := range []string{secretDigest, sha256hex(secret2)} {
			if bytes.Contains(buf.Bytes(), []byte(sum)) {
				t.Fatalf("run %d: an outside file's digest is in the manifest:\n%s", runs, buf.Bytes())
			}
		}
	}
	close(stop)
	<-done
	t.Logf("%d runs", runs)
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// With an RSA key (PKCS#1 v1.5 signatures are deterministic) the same
// tree gives the same manifest, byte for byte, signature included; with
// ECDSA only the signature line differs (TestUnchangedAndCanonical).
func TestSameTreeSameBytesRSA(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sig.KeyID(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	d := tree(t)
	mk := func() []byte {
		var buf bytes.Buffer
		if _, err := Create(&buf, []string{d}, CreateOptions{ScanOptions: ScanOptions{Algo: digest.SHA256, Xattrs: DefaultXattrs},
			Signer: k, KeyID: id}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := mk(), mk()
	if !bytes.Equal(a, b) {
		t.Fatalf("the same tree gave two manifests:\n%s\n%s", a, b)
	}
}
