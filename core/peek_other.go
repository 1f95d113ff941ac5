//go:build !linux

package core

import "net"

// peekSocket is not available here: the caller reads ahead instead.
func peekSocket(net.Conn) (byte, bool, error) { return 0, false, nil }
