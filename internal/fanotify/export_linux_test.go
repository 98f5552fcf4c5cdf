// SPDX-License-Identifier: Apache-2.0

package fanotify

import "golang.org/x/sys/unix"

// NewBlockingPermGroup is NewPermGroup as it was before O_NONBLOCK in the
// event flags: the kernel's open of an event fd waits for lease breaks.
// Tests use it to show what a stalled reader looks like.
func NewBlockingPermGroup() (*Group, error) {
	return newGroup("fanotify-perm-blocking",
		unix.FAN_CLASS_CONTENT|unix.FAN_UNLIMITED_QUEUE|unix.FAN_REPORT_TID|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
}
