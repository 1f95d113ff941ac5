package middleware

import (
	"maps"
	"strings"
	"sync"
)

// CounterStore keeps named counters that outlive a restart: a quota
// stage's bytes per user and period. It is the server's state store seen
// from a stage (Params.Counters): the file store keeps them beside the
// state file in the data directory; a store shared by a fleet (etcd) keeps
// them shared, so every instance counts against one total. Add is the only
// write, so instances never overwrite each other's counts.
//
// Calls may block on the store (a disk write, a network round trip): a
// stage calls them from a background flush, never per relayed chunk.
type CounterStore interface {
	// Add adds delta to the counter key (created at 0) and returns its new
	// value; Add(key, 0) reads it.
	Add(key string, delta int64) (int64, error)
	// Counters returns every counter whose key starts with prefix.
	Counters(prefix string) (map[string]int64, error)
	// Delete removes every counter whose key starts with prefix.
	Delete(prefix string) error
}

// MemCounters is a CounterStore in memory, for a server without a state
// store and for tests. The zero value is ready to use.
type MemCounters struct {
	mu sync.Mutex
	m  map[string]int64
}

var _ CounterStore = (*MemCounters)(nil)

// Add implements CounterStore.
func (c *MemCounters) Add(key string, delta int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[key] += delta
	return c.m[key], nil
}

// Counters implements CounterStore.
func (c *MemCounters) Counters(prefix string) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int64{}
	for k, v := range c.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

// Delete implements CounterStore.
func (c *MemCounters) Delete(prefix string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.m, func(k string, _ int64) bool { return strings.HasPrefix(k, prefix) })
	return nil
}
