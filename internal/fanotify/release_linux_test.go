// SPDX-License-Identifier: Apache-2.0

package fanotify_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/internal/fanotify"
	"github.com/intactsec/intact/internal/fanotify/fantest"
)

const envHolder = "INTACT_FANOTIFY_HOLDER_DIR"

// TestMain lets the test binary act as a group holder: a process that
// creates a notification group and then a permission group on a mount,
// reads permission events and never answers them.
func TestMain(m *testing.M) {
	if dir := os.Getenv(envHolder); dir != "" {
		os.Exit(holdGroups(dir))
	}
	if f := os.Getenv(envLease); f != "" {
		os.Exit(holdLease(f))
	}
	os.Exit(m.Run())
}

func holdGroups(dir string) int {
	n, err := fanotify.NewNotifyGroup()
	if err == nil {
		err = n.MarkFilesystem(dir, fanotify.Modify|fanotify.Attrib|fanotify.CloseWrite)
	}
	var p *fanotify.Group
	if err == nil {
		p, err = fanotify.NewPermGroup()
	}
	if err == nil {
		err = p.MarkMount(dir, fanotify.PermEvents)
	}
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if p.Fd() <= n.Fd() {
		fmt.Println("error: permission group below notification group")
		return 1
	}
	fmt.Println("ready")
	buf := make([]byte, 4096)
	for {
		// read and never answer; say how many were read
		if evs, _ := p.Read(buf); len(evs) > 0 {
			fmt.Println("read", len(evs))
		}
	}
}

// TestKilledHolderReleasesWaiters kills (SIGKILL) a process that holds a
// notification group and, above it, a permission group, while a task waits
// for a permission answer: the kernel must allow the task and the holder
// must finish exiting. (With the groups the other way round, the holder
// hangs in fsnotify_destroy_group and the task with it: see
// docs/intactd.md, "Group order".)
func TestKilledHolderReleasesWaiters(t *testing.T) {
	dir, child := fantest.Mount(t, fantest.Tmpfs, time.Minute)
	if !child {
		return
	}
	for i := range 4 {
		os.WriteFile(filepath.Join(dir, fmt.Sprint("f", i)), []byte("x"), 0o644)
	}
	holder := fantest.Command(t, 30*time.Second, os.Args[0])
	holder.Env = append(os.Environ(), envHolder+"="+dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(out)
	line, _ := lines.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		holder.Process.Kill()
		holder.Wait()
		t.Fatalf("holder: %q", line)
	}
	// Several tasks wait for answers that never come; waiting pins the
	// notification group's file-system mark too. They are direct children
	// under a context, so that a failing test still kills them.
	var waiters []*exec.Cmd
	for i := range 4 {
		c := fantest.Command(t, 20*time.Second, "cat", filepath.Join(dir, fmt.Sprint("f", i)))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waiters = append(waiters, c)
	}
	// The holder has read the four events: the waiters wait for its
	// answers.
	read := make(chan error, 1)
	go func() {
		for n := 0; n < len(waiters); {
			line, err := lines.ReadString('\n')
			if err != nil {
				read <- fmt.Errorf("holder: %q: %v", line, err)
				return
			}
			k, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "read "))
			if err != nil {
				read <- fmt.Errorf("holder: %q", line)
				return
			}
			n += k
		}
		read <- nil
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the holder has not read the waiters' events")
	}
	holder.Process.Signal(unix.SIGKILL)
	exited := make(chan error, 1)
	go func() { exited <- holder.Wait() }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("holder did not finish exiting after SIGKILL")
	}
	for i, c := range waiters {
		if err := c.Wait(); err != nil {
			t.Errorf("waiter %d: %v (want allowed when the group is released)", i, err)
		}
	}
}
