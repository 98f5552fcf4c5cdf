// SPDX-License-Identifier: Apache-2.0

// Package netlimit bounds the connections a listener holds at once: every
// listener of intact's daemons (control socket, metrics, agent, verifier
// metrics) goes through it, so that clients holding idle connections
// cannot exhaust a daemon's file descriptors.
package netlimit

import (
	"net"
	"sync"
)

// Listen returns a listener that accepts at most n connections of l at
// once: Accept waits while n are open. Closing it makes a waiting Accept
// return net.ErrClosed.
func Listen(l net.Listener, n int) net.Listener {
	return &listener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type listener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
