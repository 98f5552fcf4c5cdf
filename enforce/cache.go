// SPDX-License-Identifier: Apache-2.0

package enforce

import (
	"sync"

	"golang.org/x/sys/unix"
)

// fingerprint identifies one version of a file: a write changes size,
// mtime or ctime; chmod, chown and setxattr change ctime (which the owner
// cannot set); a new file on a reused inode number has a new generation.
type fingerprint struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // ns
	Gen          uint32
}

func fingerprintOf(fd int) (fingerprint, *unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fingerprint{}, nil, err
	}
	fp := fingerprint{
		Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		// ENOTTY on file systems without generations: 0.
		g, _ := unix.IoctlGetUint32(fd, fsIocGetVersion)
		fp.Gen = g
	}
	return fp, &st, nil
}

// entry is what is known about one file version.
type entry struct {
	appraisal *Appraisal
	sum       []byte // the content's measureAlgo digest, once read
	measured  uint32 // bit per PCR already extended with this version
	audited   bool
}

type inode struct{ dev, ino uint64 }

// cache is the userspace verdict cache.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[fingerprint]entry
	byInode map[inode][]fingerprint
	// locks holds one mutex per inode being decided (not stripes: a
	// decision hashing a large file must not hold up another inode's).
	lmu   sync.Mutex
	locks map[inode]*inodeLock
}

type inodeLock struct {
	mu   sync.Mutex
	refs int
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[fingerprint]entry{}, byInode: map[inode][]fingerprint{},
		locks: map[inode]*inodeLock{}}
}

// lock serializes decisions on one inode.
func (c *cache) lock(fp fingerprint) (unlock func()) {
	k := inode{fp.Dev, fp.Ino}
	c.lmu.Lock()
	l := c.locks[k]
	if l == nil {
		l = &inodeLock{}
		c.locks[k] = l
	}
	l.refs++
	c.lmu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		c.lmu.Lock()
		if l.refs--; l.refs == 0 {
			delete(c.locks, k)
		}
		c.lmu.Unlock()
	}
}

func (c *cache) get(fp fingerprint) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[fp]
	return e, ok
}

// has reports whether fp has an entry.
func (c *cache) has(fp fingerprint) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[fp]
	return ok
}

func (c *cache) put(fp fingerprint, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[fp]; !ok {
		if len(c.entries) >= c.max {
			clear(c.entries)
			clear(c.byInode)
		}
		k := inode{fp.Dev, fp.Ino}
		c.byInode[k] = append(c.byInode[k], fp)
	}
	c.entries[fp] = e
}

// invalidate drops every version of an inode.
func (c *cache) invalidate(dev, ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := inode{dev, ino}
	for _, fp := range c.byInode[k] {
		delete(c.entries, fp)
	}
	delete(c.byInode, k)
}

func (c *cache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	clear(c.byInode)
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// fsIocGetVersion is FS_IOC_GETVERSION, _IOR('v', 1, long), on 64-bit
// Linux: the inode generation.
const fsIocGetVersion = 0x80087601
