//go:build !unix

package limits

// openFileLimit reports that the open-file limit cannot be read here.
func openFileLimit() (soft uint64, ok bool) { return 0, false }
