package connlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Tuning of the writer.
const (
	// flushEvery bounds how long a written record may sit in the buffer
	// while records keep arriving (it is flushed when the queue runs
	// empty; see gather).
	flushEvery = time.Second
	// gather is how long the writer waits, once it has written all it
	// was given, for more to arrive before it flushes. Records sent
	// meanwhile wait in the queue without waking it, so under load it
	// wakes and writes once per batch rather than once per connection;
	// at the default queue of 4096 that takes over 800,000 connections
	// a second to overflow.
	gather = 5 * time.Millisecond
	// retryEvery is how long the writer waits before it opens the file
	// again after an error; records in between are lost (log_errors).
	retryEvery = time.Second
	// bufSize is the write buffer.
	bufSize = 64 << 10
)

// item is one record on its way to the file, with the file it goes to.
// An item without a file (out nil) carries no record: it wakes the
// writer to close its file after reopen was asked for.
type item struct {
	rec middleware.Record
	out *fileConfig
}

// writer appends records to the log file from a single goroutine, fed by a
// buffered channel. Senders never wait: when the channel is full the
// record is dropped and counted. The goroutine starts with the first
// record and ends with close.
type writer struct {
	start sync.Once

	// mu guards ch against close: senders hold it shared while they send,
	// close holds it exclusively to close the channel.
	mu     sync.RWMutex
	closed bool
	ch     chan item
	exited chan struct{} // closed when the goroutine has finished

	written atomic.Int64 // records written to the file (flushed)
	dropped atomic.Int64 // records dropped: queue full, or after close
	errors  atomic.Int64 // records lost to a file error

	// stall, when set, is called before each record is written (tests).
	stall atomic.Pointer[func()]

	// reopen asks the goroutine to close its file, so that the next
	// record opens the file's name afresh (after log rotation moved it).
	reopen atomic.Bool

	// Owned by the goroutine.
	logger  hclog.Logger
	cur     fileConfig
	f       *os.File
	bw      *bufio.Writer
	size    int64 // of the open file, buffered bytes included
	pending int64 // records in bw not yet flushed
	flushed time.Time
	retryAt time.Time
	failing bool // since the last error; logged once
	line    bytes.Buffer
	enc     *json.Encoder // writes to line
	err     error         // returned by close
}

// enqueue hands a record to the writer without blocking, starting the
// writer first if need be.
func (w *writer) enqueue(rec *middleware.Record, out *fileConfig, queue int, logger hclog.Logger) {
	w.start.Do(func() { w.run(queue, logger) })
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.dropped.Add(1)
		return
	}
	select {
	case w.ch <- item{rec: *rec, out: out}:
	default:
		w.dropped.Add(1)
	}
	w.mu.RUnlock()
}

// run starts the goroutine, unless the writer is closed already.
func (w *writer) run(queue int, logger hclog.Logger) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.ch = make(chan item, queue)
	w.exited = make(chan struct{})
	w.logger = logger
	w.bw = bufio.NewWriterSize(nil, bufSize)
	w.enc = json.NewEncoder(&w.line)
	w.enc.SetEscapeHTML(false)
	go w.loop(w.ch)
}

// close stops the writer once everything queued is written, flushed and
// synced; see state.Close.
func (w *writer) close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		if w.ch != nil {
			close(w.ch)
		}
	}
	exited := w.exited
	w.mu.Unlock()
	if exited == nil {
		return nil // never started
	}
	<-exited
	return w.err
}

// reopenFile makes the writer close its file and open the file's name
// again at the next record: after `mv connections.jsonl
// connections.jsonl.1`, new records go to a new connections.jsonl, not to
// the moved file. It never waits: the goroutine, if running, is woken to
// close the moved file now (if the queue is full, it does so before the
// next record it takes).
func (w *writer) reopenFile() {
	w.reopen.Store(true)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed || w.ch == nil {
		return
	}
	select {
	case w.ch <- item{}:
	default:
	}
}

// reopenIfAsked closes the file if reopen was asked for since it was
// opened; the next record opens it again.
func (w *writer) reopenIfAsked() {
	if !w.reopen.Swap(false) || w.f == nil {
		return
	}
	w.logger.Debug("reopening the connection log", "file", w.cur.path)
	if err := w.closeFile(); err != nil {
		w.logger.Error("closing the connection log failed", "file", w.cur.path, "error", err)
	}
}

func (w *writer) loop(ch <-chan item) {
	defer close(w.exited)
	for it := range ch {
		w.reopenIfAsked()
		if it.out == nil {
			continue // only a wake-up
		}
		if h := w.stall.Load(); h != nil {
			(*h)()
		}
		w.write(&it)
		if len(ch) == 0 {
			time.Sleep(gather)
		}
		if len(ch) == 0 || time.Since(w.flushed) >= flushEvery {
			w.flush()
		}
	}
	w.err = w.closeFile()
}

// write appends one record, opening or rotating the file as needed.
func (w *writer) write(it *item) {
	if it.out.path != w.cur.path && w.f != nil {
		if err := w.closeFile(); err != nil {
			w.logger.Error("closing the connection log failed", "file", w.cur.path, "error", err)
		}
	}
	w.cur = *it.out
	if w.f == nil {
		if time.Now().Before(w.retryAt) {
			w.errors.Add(1)
			return
		}
		if err := w.open(); err != nil {
			w.fail("open", err)
			w.errors.Add(1)
			return
		}
		if w.failing {
			w.failing = false
			w.logger.Info("writing the connection log again", "file", w.cur.path, "lost", w.errors.Load())
		}
	}
	line, err := w.encode(&it.rec)
	if err != nil {
		w.logger.Error("cannot encode a connection record", "id", it.rec.ID, "error", err)
		w.errors.Add(1)
		return
	}
	if w.size > 0 && w.size+int64(len(line)) > w.cur.maxSize {
		if err := w.rotate(); err != nil {
			w.fail("rotate", err)
			w.errors.Add(1)
			return
		}
	}
	if _, err := w.bw.Write(line); err != nil {
		w.fail("write", err)
		w.errors.Add(1)
		return
	}
	w.size += int64(len(line))
	w.pending++
}

// encode returns the record's JSON line, valid until the next call.
func (w *writer) encode(rec *middleware.Record) ([]byte, error) {
	w.line.Reset()
	l := lineOf(rec)
	if err := w.enc.Encode(&l); err != nil {
		return nil, err
	}
	return w.line.Bytes(), nil
}

// flush writes the buffer to the file.
func (w *writer) flush() {
	w.flushed = time.Now()
	if w.f == nil || w.pending == 0 {
		return
	}
	if err := w.bw.Flush(); err != nil {
		w.fail("write", err)
		return
	}
	w.written.Add(w.pending)
	w.pending = 0
}

// fail counts the records in the buffer as lost, closes the file and
// waits a little before opening it again.
func (w *writer) fail(op string, err error) {
	if !w.failing {
		w.logger.Error("cannot write the connection log; records are lost until it works again", "op", op, "file", w.cur.path, "error", err)
	} else {
		w.logger.Debug("connection log still failing", "op", op, "file", w.cur.path, "error", err)
	}
	w.failing = true
	w.errors.Add(w.pending)
	w.pending = 0
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
	w.bw.Reset(nil)
	w.retryAt = time.Now().Add(retryEvery)
}

// open opens (or creates, mode 0600, in a directory created 0700) the
// current file for appending, never through a symbolic link (see
// middleware.OpenDataFile). A last line cut short by a crash is ended, so
// the next record starts on a line of its own.
func (w *writer) open() error {
	if err := os.MkdirAll(filepath.Dir(w.cur.path), 0o700); err != nil {
		return err
	}
	f, err := middleware.OpenDataFile(w.cur.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	size := fi.Size()
	if size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			f.Close()
			return err
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return err
			}
			size++
		}
	}
	w.f, w.size = f, size
	w.bw.Reset(f)
	return nil
}

// closeFile flushes, syncs and closes the current file, if one is open.
func (w *writer) closeFile() error {
	if w.f == nil {
		return nil
	}
	err := w.bw.Flush()
	if err == nil {
		w.written.Add(w.pending)
	} else {
		w.errors.Add(w.pending)
	}
	w.pending = 0
	err = errors.Join(err, w.f.Sync(), w.f.Close())
	w.f = nil
	w.bw.Reset(nil)
	return err
}

// rotate closes the current file, shifts file → file.1 → ... → file.keep,
// deleting the oldest, and opens a new file.
func (w *writer) rotate() error {
	if err := w.closeFile(); err != nil {
		return err
	}
	if err := shift(w.cur.path, w.cur.keep); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(w.cur.path)); err != nil {
		return err
	}
	return w.open()
}

// rotated returns the name of the i-th rotated file (0 is the current one).
func rotated(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// shift renames path to path.1, path.1 to path.2 and so on, keeping keep
// rotated files: path.keep and any older ones (left by a larger keep) are
// deleted first. With keep 0 the file itself is deleted.
func shift(path string, keep int) error {
	oldest := max(keep, 1)
	if err := removeIfExists(rotated(path, oldest)); err != nil {
		return err
	}
	for i := oldest + 1; ; i++ {
		err := os.Remove(rotated(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
	}
	if keep == 0 {
		return removeIfExists(path)
	}
	for i := keep - 1; i >= 0; i-- {
		err := os.Rename(rotated(path, i), rotated(path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func removeIfExists(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
