//go:build !linux

package core

// checkFD reports the socket ready at once where there is no cheap way to
// ask: the relay then reads (and may wait) holding a buffer.
func (r *readiness) checkFD(uintptr) bool {
	r.avail = spliceChunk
	return true
}

// readFD has no portable raw read here: the relay splices instead.
func (r *readiness) readFD(uintptr) bool {
	r.err = errNoRawRead
	return true
}
