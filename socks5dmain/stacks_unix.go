//go:build unix

package socks5dmain

import "syscall"

// reexec replaces the process image; it returns only if that failed.
func reexec(exe string, args, env []string) { _ = syscall.Exec(exe, args, env) }
