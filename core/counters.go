package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"path/filepath"
	"strings"
	"sync"

	"github.com/socks5d/socks5d/middleware"
)

// CountersFile is the name of the counters file the file store keeps
// beside the state file.
const CountersFile = "counters.json"

// FileCounters is a middleware.CounterStore in one JSON file (an object of
// key: count), written atomically and durably on every change like the
// state file. It is read once, on first use; this process is the file's
// only writer.
type FileCounters struct {
	Path string

	mu     sync.Mutex
	loaded bool
	m      map[string]int64
}

var _ middleware.CounterStore = (*FileCounters)(nil)

// NewFileCounters returns counters kept in path.
func NewFileCounters(path string) *FileCounters { return &FileCounters{Path: path} }

// load reads the file once; a missing file holds no counters. Called with
// the lock held.
func (f *FileCounters) load() error {
	if f.loaded {
		return nil
	}
	data, err := readDataFile(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.m = map[string]int64{}
	case err != nil:
		return fmt.Errorf("%w: counters file %s: %w", ErrState, f.Path, err)
	default:
		m := map[string]int64{}
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("%w: counters file %s is corrupt: %v (it was left in place; fix it or move it away to start counting from 0)", ErrState, f.Path, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: counters file %s is corrupt: data after the JSON object", ErrState, f.Path)
		}
		f.m = m
	}
	f.loaded = true
	return nil
}

// save writes m; on failure the caller keeps the old map. Called with the
// lock held.
func (f *FileCounters) save(m map[string]int64) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := writeFileAtomic(f.Path, append(data, '\n')); err != nil {
		return fmt.Errorf("%w: counters file %s: %w", ErrState, f.Path, err)
	}
	return nil
}

// Add implements middleware.CounterStore. A change is on disk when Add
// returns nil; when it fails, the counter is as it was.
func (f *FileCounters) Add(key string, delta int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(); err != nil {
		return 0, err
	}
	if delta == 0 {
		return f.m[key], nil
	}
	v := f.m[key]
	if (delta > 0 && v > math.MaxInt64-delta) || (delta < 0 && v < math.MinInt64-delta) {
		return 0, fmt.Errorf("%w: counter %q would overflow", ErrState, key)
	}
	m := maps.Clone(f.m)
	m[key] = v + delta
	if err := f.save(m); err != nil {
		return 0, err
	}
	f.m = m
	return v + delta, nil
}

// Counters implements middleware.CounterStore.
func (f *FileCounters) Counters(prefix string) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for k, v := range f.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

// Delete implements middleware.CounterStore.
func (f *FileCounters) Delete(prefix string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.load(); err != nil {
		return err
	}
	m := maps.Clone(f.m)
	maps.DeleteFunc(m, func(k string, _ int64) bool { return strings.HasPrefix(k, prefix) })
	if len(m) == len(f.m) {
		return nil
	}
	if err := f.save(m); err != nil {
		return err
	}
	f.m = m
	return nil
}

// countersFor returns where a store keeps counters: the store itself when
// it is a middleware.CounterStore (a store shared by a fleet that carries
// them), the counters file beside a FileStore's state file, else (a
// shared store that does not carry counters) the counters file in
// dataDir, so they still outlive a restart of this instance; nil without
// a data directory.
func countersFor(store Store, dataDir string) middleware.CounterStore {
	switch s := store.(type) {
	case middleware.CounterStore:
		return s
	case *FileStore:
		return NewFileCounters(filepath.Join(filepath.Dir(s.Path), CountersFile))
	}
	if dataDir == "" {
		return nil
	}
	return NewFileCounters(filepath.Join(dataDir, CountersFile))
}

// runtimeCounters is the CounterStore stages get (Params.Counters): it
// forwards to the counters of the store in use (UseStore), or to memory
// before there is one, so a stage built before the store is known still
// persists once it is.
type runtimeCounters struct{ rt *Runtime }

var _ middleware.CounterStore = runtimeCounters{}

func (c runtimeCounters) target() middleware.CounterStore {
	if t := c.rt.counters.Load(); t != nil {
		return *t
	}
	return &c.rt.memCounters
}

// Add implements middleware.CounterStore.
func (c runtimeCounters) Add(key string, delta int64) (int64, error) {
	return c.target().Add(key, delta)
}

// Counters implements middleware.CounterStore.
func (c runtimeCounters) Counters(prefix string) (map[string]int64, error) {
	return c.target().Counters(prefix)
}

// Delete implements middleware.CounterStore.
func (c runtimeCounters) Delete(prefix string) error { return c.target().Delete(prefix) }
