package socks5dmain

import "runtime/debug"

// modulePath is socks5d's module: the main module of cmd/socks5d, a
// dependency of a server of your own.
const modulePath = "github.com/socks5d/socks5d"

// socks5dModule returns socks5d's module in bi: the main module, or the
// dependency when the binary is a module of its own that requires socks5d;
// nil when it is neither.
func socks5dModule(bi *debug.BuildInfo) *debug.Module {
	if bi.Main.Path == modulePath {
		return &bi.Main
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			return d
		}
	}
	return nil
}
