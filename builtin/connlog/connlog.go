// Package connlog is the "connlog" stage: it keeps a record of every
// finished connection, failed ones included, in a ring for PCTP's LOGS and,
// by default, in a rotating file of JSON lines in the data directory, from
// which the ring is refilled when the server starts again.
package connlog

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "connlog"

// Limits of the size key, in records.
const (
	// MinSize is the smallest ring PCTP allows.
	MinSize = 4096
	// MaxSize bounds the memory the ring takes (a record is under 200 bytes).
	MaxSize = 1 << 20
)

// Defaults and limits of the file keys.
const (
	// DefaultFile is the log file, relative to the data directory.
	DefaultFile = "connections.jsonl"
	// DefaultMaxSize is the size at which the file is rotated.
	DefaultMaxSize = 64 << 20
	// MinFileSize is the smallest max_size.
	MinFileSize = 1 << 10
	// DefaultKeep is how many rotated files are kept.
	DefaultKeep = 5
	// MaxKeep bounds keep.
	MaxKeep = 1000
	// DefaultQueue is how many records may wait for the file writer.
	DefaultQueue = 4096
	// MaxQueue bounds queue.
	MaxQueue = 1 << 20
)

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "keeps the last connections (a ring of at least 4096 records) for LOGS, and a rotating JSON-lines file of them",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Size is how many records the ring holds.
	Size int `json:"size"`
	// File is the JSON-lines log, relative to the data directory; ""
	// turns the file off.
	File FileSetting `json:"file"`
	// MaxSize is the size at which the file is rotated.
	MaxSize middleware.Size `json:"max_size"`
	// Keep is how many rotated files are kept (file.1 ... file.Keep).
	Keep int `json:"keep"`
	// Queue is how many records may wait for the file writer before new
	// ones are dropped (and counted).
	Queue int `json:"queue"`
}

// FileSetting is the file key: a path, or "", false or null for no file
// (true means DefaultFile).
type FileSetting string

// UnmarshalJSON accepts a string, a boolean or null.
func (f *FileSetting) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*f = ""
	case bool:
		*f = ""
		if v {
			*f = DefaultFile
		}
	case string:
		*f = FileSetting(v)
	default:
		return fmt.Errorf("%w: %s is not a file name (a path, or \"\" or false for none)", middleware.ErrBadValue, b)
	}
	return nil
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config {
	return Config{Size: MinSize, File: DefaultFile, MaxSize: DefaultMaxSize, Keep: DefaultKeep, Queue: DefaultQueue}
}

// fileConfig says where and how a stage writes the file. Records carry a
// pointer to their stage's, so the writer follows a live change.
type fileConfig struct {
	path    string // absolute, or relative to the working directory
	maxSize int64
	keep    int
}

// stage is immutable after New.
type stage struct {
	size   int
	out    *fileConfig // nil: no file
	queue  int
	logger hclog.Logger
	state  *state
}

var (
	_ middleware.Middleware  = (*stage)(nil)
	_ middleware.LogSource   = (*stage)(nil)
	_ middleware.StatsSource = (*stage)(nil)
	_ middleware.Reopener    = (*stage)(nil)
	_ middleware.Activator   = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "connlog" type. It
// touches no file: the log is read back and the writer started when the
// stage is first used.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.Size < MinSize:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "size", cfg.Size, ErrSizeTooSmall)
	case cfg.Size > MaxSize:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "size", cfg.Size, ErrSizeTooLarge)
	case cfg.MaxSize < MinFileSize:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "max_size", cfg.MaxSize, ErrMaxSizeTooSmall)
	case cfg.Keep < 0 || cfg.Keep > MaxKeep:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "keep", cfg.Keep, ErrKeepRange)
	case cfg.Queue < 1 || cfg.Queue > MaxQueue:
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "queue", cfg.Queue, ErrQueueRange)
	}
	st := &stage{size: cfg.Size, queue: cfg.Queue, logger: p.Logger}
	if st.logger == nil {
		st.logger = hclog.NewNullLogger()
	}
	if path := resolve(string(cfg.File), p.DataDir); path != "" {
		st.out = &fileConfig{path: path, maxSize: int64(cfg.MaxSize), keep: cfg.Keep}
	}
	st.state = middleware.Get(p.Shared, p.Name, newState)
	return st, nil
}

// resolve returns the file's path: relative names are relative to the data
// directory, and without one there is no file.
func resolve(file, dataDir string) string {
	switch {
	case file == "":
		return ""
	case filepath.IsAbs(file):
		return filepath.Clean(file)
	case dataDir == "":
		return ""
	}
	return filepath.Join(dataDir, file)
}

// Wrap adds the session's record after next, however next ended: to the
// ring, and to the file writer's queue without ever waiting for it.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		err := next.ServeConn(ctx, s)
		rec := middleware.RecordOf(s)
		rec.Reason = CloseReason(ctx, s, err)
		st.state.load(st)
		st.state.ring.add(&rec, st.size)
		if st.out != nil {
			st.state.w.enqueue(&rec, st.out, st.queue, st.logger)
		}
		return err
	})
}

// Activate implements middleware.Activator: the ring takes the size of
// the stage that went live, keeping the newest records.
func (st *stage) Activate() { st.state.ring.resize(st.size) }

// ReopenFiles implements middleware.Reopener: the writer closes the file
// it appends to, and the next record opens the configured name again (a
// new file, if log rotation moved the old one away). It never waits.
func (st *stage) ReopenFiles() { st.state.w.reopenFile() }

// Records implements middleware.LogSource: up to n records, newest first;
// n <= 0 or more than are held returns all of them.
func (st *stage) Records(n int) []middleware.Record {
	st.state.load(st)
	return st.state.ring.records(n)
}

// Stats implements middleware.StatsSource: log_records is how many records
// the ring holds now; log_written, log_dropped and log_errors count records
// written to the file, dropped because the writer's queue was full, and
// lost to a file error; log_corrupt_lines counts lines skipped when the
// ring was refilled from the file.
func (st *stage) Stats() []middleware.Stat {
	st.state.load(st)
	w := &st.state.w
	return []middleware.Stat{
		{Key: "log_records", Value: int64(st.state.ring.len())},
		{Key: "log_written", Value: w.written.Load()},
		{Key: "log_dropped", Value: w.dropped.Load()},
		{Key: "log_errors", Value: w.errors.Load()},
		{Key: "log_corrupt_lines", Value: st.state.corrupt.Load()},
	}
}
