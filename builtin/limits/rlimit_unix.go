//go:build unix

package limits

import "syscall"

// openFileLimit returns the soft limit of open files (RLIMIT_NOFILE) of the
// process; ok is false when it cannot be read.
func openFileLimit() (soft uint64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true
}
