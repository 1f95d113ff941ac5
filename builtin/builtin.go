// Package builtin links the stages that ship with socks5d into a binary.
//
// It only blank-imports one sub-package per stage; each registers itself
// with middleware.Register from its init function. A server's main imports
// it for its side effects:
//
//	import _ "github.com/socks5d/socks5d/builtin"
//
// and a user's own stages are linked the same way, beside it.
package builtin

import (
	// Register the builtin stage types.
	_ "github.com/socks5d/socks5d/builtin/accounting"
	_ "github.com/socks5d/socks5d/builtin/auth"
	_ "github.com/socks5d/socks5d/builtin/connlog"
	_ "github.com/socks5d/socks5d/builtin/filter"
	_ "github.com/socks5d/socks5d/builtin/forward"
	_ "github.com/socks5d/socks5d/builtin/iobuf"
	_ "github.com/socks5d/socks5d/builtin/limits"
	_ "github.com/socks5d/socks5d/builtin/metrics"
	_ "github.com/socks5d/socks5d/builtin/quota"
	_ "github.com/socks5d/socks5d/builtin/ratelimit"
)
