//go:build unix

package core

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openToOthers says why users other than the server's own may create
// entries in the directory fi describes, or "" when they may not: it is
// group- or world-writable (sticky or not: in a sticky directory, others
// may still create the names the server has not created yet), or it is
// owned by another user than the server's or root.
func openToOthers(fi fs.FileInfo) string {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Sprintf("is writable by group or others (mode %04o)", perm)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if euid := os.Geteuid(); int(st.Uid) != euid && st.Uid != 0 {
		return fmt.Sprintf("is owned by uid %d, not by the server's user (uid %d) or root", st.Uid, euid)
	}
	return ""
}
