// Package socks5dmain is the socks5d server as a library: the command line,
// configuration loading, listeners, signals, live reload and drain that
// cmd/socks5d runs. It is the entry point for a server of your own with
// stages of your own, as CoreDNS's coremain and Caddy's caddycmd are: a
// main package that blank-imports your stages and calls Run.
//
//	package main
//
//	import (
//		_ "example.com/myproxy/portguard" // registers the portguard stage
//
//		"github.com/socks5d/socks5d/socks5dmain"
//	)
//
//	func main() { socks5dmain.Run() }
//
// The builtin stages come with this package (it blank-imports
// github.com/socks5d/socks5d/builtin); name yours in the chain: list with
// `- use: portguard`. Flags, configuration, PCTP and metrics are socks5d's
// own, documented in its README. examples/portguard in socks5d's repository
// is such a module, with its go.mod, its stage and its tests.
//
// This package sits beside cmd/socks5d at the top of the house: it imports
// core, pctp and builtin, and nothing in this module but cmd/socks5d
// imports it.
package socks5dmain

import (
	"context"
	"os"
)

// Run runs the server with the process's arguments, prints any error on
// stderr and exits the process with ExitCode's status. It returns only
// through os.Exit.
//
// Before anything else it re-executes the binary once, same PID and
// arguments, with GODEBUG=adaptivestackstart=0 added, so that goroutines
// start on 2 KiB stacks (see smallStacks); a GODEBUG that already names
// adaptivestackstart is kept as it is.
func Run() {
	withSmallStacks()
	err := RunContext(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(ExitCode(err, os.Stderr))
}
