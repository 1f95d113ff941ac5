//go:build !linux

package core

import "net"

// listenConfig returns the SOCKS listener's configuration: keep-alive set
// on each accepted connection.
func listenConfig(ka net.KeepAliveConfig) *net.ListenConfig {
	lc := &net.ListenConfig{KeepAliveConfig: ka}
	if !ka.Enable {
		lc.KeepAlive = -1 // off, as net.ListenConfig spells it
	}
	return lc
}
