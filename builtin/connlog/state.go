package connlog

import (
	"io"
	"sync"
	"sync/atomic"
)

// state is what the stage keeps in the shared pool under its name, so that
// it outlives every rebuild of the chain: the ring, the file writer and
// its counters. It synchronises itself.
type state struct {
	ring ring
	w    writer

	loadOnce sync.Once
	corrupt  atomic.Int64 // lines skipped when the ring was refilled
}

var _ io.Closer = (*state)(nil)

func newState() *state { return new(state) }

// load refills the ring from the newest records of st's file, once per
// shared state, before the ring is first used: on the first connection or
// the first LOGS or STATS after the server starts. Everything that touches
// the ring calls it first, so the records read back are always older than
// the ones added since, and the writer has not yet appended to the file.
func (s *state) load(st *stage) {
	s.loadOnce.Do(func() {
		if st.out == nil {
			return
		}
		recs, corrupt, err := readNewest(st.out, st.size)
		s.corrupt.Add(corrupt)
		if corrupt > 0 {
			st.logger.Warn("skipped corrupt lines in the connection log", "file", st.out.path, "lines", corrupt)
		}
		if err != nil {
			st.logger.Error("cannot read back the connection log", "file", st.out.path, "error", err)
		}
		if len(recs) > 0 {
			s.ring.fill(recs, st.size)
		}
	})
}

// Close stops the file writer after it has written every record queued so
// far, flushed and fsynced the file, and closed it. Records that end after
// Close are kept in the ring but not written (they count as log_dropped).
// Close waits for the writer and returns the error of its final flush,
// sync or close, if any; it is safe to call more than once and from any
// goroutine. The server calls it, through io.Closer, when it shuts the
// shared pool down.
func (s *state) Close() error { return s.w.close() }
