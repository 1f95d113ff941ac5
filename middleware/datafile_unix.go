//go:build unix

package middleware

import "syscall"

// noFollow makes open fail on a symbolic link; O_NONBLOCK keeps open from
// waiting for a writer when the name is a FIFO (it is then refused as not
// a regular file), and changes nothing for a regular file.
const noFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
