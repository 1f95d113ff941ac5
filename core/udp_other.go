//go:build !linux

package core

import "net"

// udpWaiter does not wait where the socket cannot be peeked at: the read
// loop then holds its buffer while it blocks.
type udpWaiter struct{}

func (w *udpWaiter) init(*net.UDPConn) {}

func (w *udpWaiter) wait() error { return nil }
