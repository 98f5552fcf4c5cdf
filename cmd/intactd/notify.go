// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/internal/fanotify"
)

// invalidator reads a FID-mode notification group marked on the watched
// file systems and invalidates what the engine knows of every file
// written or whose attributes change (chmod, chown, setxattr: these do not
// clear the kernel's ignore mask by themselves).
type invalidator struct {
	g      *fanotify.Group
	eng    *enforce.Engine
	log    *slog.Logger
	mounts map[[2]int32]int // fsid -> directory fd on that file system
}

const invalidationMask = fanotify.Modify | fanotify.Attrib | fanotify.CloseWrite

// newInvalidator creates the notification group. It must be created
// before the permission group: see the note on group order in main.go.
// The engine is set once it exists (setEngine), before run.
func newInvalidator(log *slog.Logger, watch []string) (*invalidator, error) {
	g, err := fanotify.NewNotifyGroup()
	if err != nil {
		return nil, err
	}
	inv := &invalidator{g: g, log: log, mounts: map[[2]int32]int{}}
	for _, w := range watch {
		// Opened before any mark: no permission event for our own open.
		fd, err := unix.Open(w, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			inv.close()
			return nil, fmt.Errorf("open %s: %w", w, err)
		}
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err != nil {
			unix.Close(fd)
			inv.close()
			return nil, fmt.Errorf("statfs %s: %w", w, err)
		}
		if _, dup := inv.mounts[sfs.Fsid.Val]; dup {
			unix.Close(fd)
		} else {
			inv.mounts[sfs.Fsid.Val] = fd
		}
		if err := g.MarkFilesystem(w, invalidationMask); err != nil {
			inv.close()
			return nil, err
		}
	}
	return inv, nil
}

func (inv *invalidator) setEngine(eng *enforce.Engine) { inv.eng = eng }

// fd is the group's descriptor number.
func (inv *invalidator) fd() int { return inv.g.Fd() }

// run handles events until the group is closed.
func (inv *invalidator) run() {
	buf := make([]byte, 64<<10)
	for {
		evs, err := inv.g.Read(buf)
		for i := range evs {
			inv.handle(&evs[i])
		}
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			// Unknown state: forget everything rather than keep stale
			// verdicts.
			inv.log.Error("invalidation group read failed; cache dropped", "err", err)
			inv.eng.InvalidateAll()
			return
		}
	}
}

func (inv *invalidator) handle(ev *fanotify.Event) {
	if ev.Mask&fanotify.QOverflow != 0 {
		inv.log.Warn("invalidation queue overflowed; cache dropped")
		inv.eng.InvalidateAll()
		return
	}
	mfd, ok := inv.mounts[ev.FSID]
	if !ok || len(ev.Handle) == 0 {
		return
	}
	fd, err := fanotify.OpenHandle(mfd, ev)
	if errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT) {
		return // deleted meanwhile: its inode is gone, and its marks
	}
	if err != nil {
		// EMFILE, ENFILE, ENOMEM: the file changed and we cannot say
		// which inode it is: forget everything rather than keep a stale
		// verdict.
		inv.log.Error("cannot open a changed file to invalidate it; cache dropped", "err", err)
		inv.eng.InvalidateAll()
		return
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return
	}
	inv.eng.Invalidate(fd, st.Dev, st.Ino)
}

func (inv *invalidator) close() {
	inv.g.Close()
	for _, fd := range inv.mounts {
		unix.Close(fd)
	}
}
