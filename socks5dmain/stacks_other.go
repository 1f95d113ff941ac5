//go:build !unix

package socks5dmain

func reexec(string, []string, []string) {}
