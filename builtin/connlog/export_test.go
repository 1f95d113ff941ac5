package connlog

import "github.com/socks5d/socks5d/middleware"

// StallWriter makes the file writer of mw's shared state call hook before
// it writes each record.
func StallWriter(mw middleware.Middleware, hook func()) {
	mw.(*stage).state.w.stall.Store(&hook)
}

// FileOf returns where and how mw writes its file ("" for no file).
func FileOf(mw middleware.Middleware) (path string, maxSize int64, keep, queue int) {
	st := mw.(*stage)
	if st.out == nil {
		return "", 0, 0, st.queue
	}
	return st.out.path, st.out.maxSize, st.out.keep, st.queue
}
