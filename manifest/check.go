// SPDX-License-Identifier: Apache-2.0

package manifest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"strconv"
)

// Status is what happened to an entry.
type Status string

// The statuses a check reports.
const (
	Added   Status = "added"
	Removed Status = "removed"
	Changed Status = "changed"
)

// Change is one attribute of an entry that differs: Attr is "type",
// "content", "mode", "owner", "group", "size", "target", "device" or
// "xattr NAME"; Old and New are their values as a report shows them
// ("absent" for an xattr that is not there).
type Change struct {
	Attr string `json:"attr"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Difference is one entry that was added, removed or changed.
type Difference struct {
	Root    string   `json:"root"`
	Path    string   `json:"-"` // relative to Root, raw bytes
	Status  Status   `json:"status"`
	Type    Type     `json:"-"`
	Changes []Change `json:"changes,omitempty"`
}

// Diff returns the attributes of got that differ from want, comparing
// only those want records. A changed type is the only change reported:
// the other attributes of different types do not compare.
func Diff(want, got *Entry) []Change {
	if want.Type != got.Type {
		return []Change{{"type", want.Type.String(), got.Type.String()}}
	}
	var cs []Change
	has := want.Has & recordable(want.Type)
	num := func(a Attrs, name string, w, g uint64, format func(uint64) string) {
		if has&a != 0 && w != g {
			cs = append(cs, Change{name, format(w), format(g)})
		}
	}
	dec := func(v uint64) string { return strconv.FormatUint(v, 10) }
	// content first: it is what a reader cares about most
	if has&AttrContent != 0 && !bytes.Equal(want.Digest, got.Digest) {
		cs = append(cs, Change{"content", hex.EncodeToString(want.Digest), hex.EncodeToString(got.Digest)})
	}
	num(AttrMode, "mode", uint64(want.Mode), uint64(got.Mode), func(v uint64) string { return fmt.Sprintf("%04o", v) })
	num(AttrOwner, "owner", uint64(want.UID), uint64(got.UID), dec)
	num(AttrGroup, "group", uint64(want.GID), uint64(got.GID), dec)
	num(AttrSize, "size", uint64(want.Size), uint64(got.Size), dec)
	if has&AttrTarget != 0 && want.Target != got.Target {
		cs = append(cs, Change{"target", Escape(want.Target), Escape(got.Target)})
	}
	if has&AttrDevice != 0 && (want.Major != got.Major || want.Minor != got.Minor) {
		cs = append(cs, Change{"device", fmt.Sprintf("%d:%d", want.Major, want.Minor), fmt.Sprintf("%d:%d", got.Major, got.Minor)})
	}
	if has&AttrXattrs != 0 {
		cs = append(cs, diffXattrs(want.Xattrs, got.Xattrs)...)
	}
	return cs
}

func diffXattrs(want, got []Xattr) []Change {
	var cs []Change
	b64 := base64.StdEncoding.EncodeToString
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i].Name < got[j].Name):
			cs = append(cs, Change{"xattr " + Escape(want[i].Name), b64(want[i].Value), "absent"})
			i++
		case i == len(want) || got[j].Name < want[i].Name:
			cs = append(cs, Change{"xattr " + Escape(got[j].Name), "absent", b64(got[j].Value)})
			j++
		default:
			if !bytes.Equal(want[i].Value, got[j].Value) {
				cs = append(cs, Change{"xattr " + Escape(want[i].Name), b64(want[i].Value), b64(got[j].Value)})
			}
			i++
			j++
		}
	}
	return cs
}

// Result is the outcome of Check.
type Result struct {
	Differences []Difference
	Errors      []*ScanError // entries that could not be read
	ErrorRoots  []string     // the root of each error
	Entries     int          // entries in the manifest
	Seen        int          // entries found in the trees
	Added       int
	Removed     int
	Changed     int
}

// Check compares the trees with the verified manifest v. dirFor names
// the directory to read for each root of the manifest (the root itself,
// or where the tree is mounted now). opts gives the jobs and progress;
// the algorithm, xattrs and rules are the manifest's. The result is
// returned only once the manifest was read again unchanged: nothing of an
// unverified manifest is reported.
//
// seen, if not nil, is called with every entry found in the trees, in
// manifest order, as a Writer takes them (manifest update writes them).
func Check(v *Verified, dirFor func(root string) string, opts ScanOptions, seen func(root string, e *Entry) error) (*Result, error) {
	rules, err := RulesFromLines(v.Rules)
	if err != nil {
		return nil, fmt.Errorf("%w: rules: %v", ErrMalformed, err)
	}
	opts.Algo, opts.Xattrs, opts.Rules, opts.CrossFS = v.Algo, v.Xattrs, rules, v.CrossFS
	c := &checker{res: &Result{}, opts: opts, dirFor: dirFor, seen: seen}
	err = v.Entries(c.want)
	if c.stop != nil {
		if err == nil {
			c.drain()
		}
		c.stop()
	}
	if err != nil {
		return nil, err
	}
	if c.scanErr != nil {
		return nil, c.scanErr
	}
	return c.res, nil
}

type checker struct {
	res    *Result
	opts   ScanOptions
	dirFor func(string) string
	seen   func(string, *Entry) error

	root    string
	next    func() (*Entry, error, bool)
	stop    func()
	head    *Entry
	headErr error
	done    bool
	scanErr error    // the walk itself failed (the root cannot be opened)
	badDirs []string // directories whose listing failed: their entries are not "removed"
}

var errStop = errors.New("stop")

func (c *checker) start(root string) {
	c.root, c.head, c.headErr, c.done, c.badDirs = root, nil, nil, false, nil
	dir := c.dirFor(root)
	seq := func(yield func(*Entry, error) bool) {
		err := Scan(dir, root, c.opts, func(e *Entry, err error) error {
			if !yield(e, err) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(nil, fmt.Errorf("%s: %w", dir, err))
		}
	}
	c.next, c.stop = iter.Pull2(iter.Seq2[*Entry, error](seq))
}

// peek returns the next entry of the tree (nil at its end), recording
// read errors on the way.
func (c *checker) peek() *Entry {
	for c.head == nil && !c.done {
		e, err, ok := c.next()
		switch {
		case !ok:
			c.done = true
		case err != nil:
			var se *ScanError
			if !errors.As(err, &se) {
				c.scanErr = err
				c.done = true
				break
			}
			c.res.Errors = append(c.res.Errors, se)
			c.res.ErrorRoots = append(c.res.ErrorRoots, c.root)
			c.badDirs = append(c.badDirs, se.Path)
		default:
			c.head = e
			if c.seen != nil && c.scanErr == nil {
				if err := c.seen(c.root, e); err != nil {
					c.scanErr = err
				}
			}
		}
	}
	return c.head
}

func (c *checker) add(d Difference) {
	d.Root = c.root
	c.res.Differences = append(c.res.Differences, d)
	switch d.Status {
	case Added:
		c.res.Added++
	case Removed:
		c.res.Removed++
	case Changed:
		c.res.Changed++
	}
}

// want takes the next entry of the manifest.
func (c *checker) want(root string, w *Entry) error {
	if c.next == nil || root != c.root {
		if c.next != nil {
			c.drain()
			c.stop()
		}
		c.start(root)
	}
	c.res.Entries++
	for {
		g := c.peek()
		if c.scanErr != nil {
			return c.scanErr
		}
		cmp := 1
		if g != nil {
			cmp = ComparePaths(g.Path, w.Path)
		}
		switch {
		case cmp < 0:
			c.res.Seen++
			c.add(Difference{Path: g.Path, Status: Added, Type: g.Type})
			c.head = nil
			continue
		case cmp == 0:
			c.res.Seen++
			if cs := Diff(w, g); len(cs) > 0 {
				c.add(Difference{Path: w.Path, Status: Changed, Type: g.Type, Changes: cs})
			}
			c.head = nil
			return nil
		}
		if !c.unreadable(w.Path) {
			c.add(Difference{Path: w.Path, Status: Removed, Type: w.Type})
		}
		return nil
	}
}

// unreadable reports whether p is, or is below, an entry that could not
// be read: it is not reported removed, its error is reported instead.
func (c *checker) unreadable(p string) bool {
	for _, d := range c.badDirs {
		if isBelow(p, d) {
			return true
		}
	}
	return false
}

// drain reports what is left of the current tree as added.
func (c *checker) drain() {
	for g := c.peek(); g != nil; g = c.peek() {
		c.res.Seen++
		c.add(Difference{Path: g.Path, Status: Added, Type: g.Type})
		c.head = nil
	}
}
