//go:build !unix

package core

import "io/fs"

// openToOthers has no owner and mode bits to read here: access is the
// operating system's ACLs' business.
func openToOthers(fs.FileInfo) string { return "" }
