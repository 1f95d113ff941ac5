// Command myproxy is socks5d with one stage of its own, portguard, beside
// the builtin stages: blank imports of the stages, then one call.
package main

import (
	_ "example.com/myproxy/portguard" // registers `use: portguard`

	"github.com/socks5d/socks5d/socks5dmain"
)

func main() { socks5dmain.Run() }
