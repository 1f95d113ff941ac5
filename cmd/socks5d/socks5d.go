// Command socks5d is a SOCKS5 proxy server whose every connection flows
// through an ordered middleware chain, administered live over PCTP.
//
// Usage:
//
//	socks5d [-c FILE] [-l ADDR] [-p PORT] [-L ADDR] [-P PORT] [-u USER:PASS]... [-d LEVEL]
//	socks5d hash
//
// With no -c and no configs/proxy.yaml under the working directory it runs
// on built-in defaults. The server is package socks5dmain, with the builtin
// stages; a server with stages of your own is the same one call (see
// socks5dmain's doc).
package main

import "github.com/socks5d/socks5d/socks5dmain"

func main() { socks5dmain.Run() }
