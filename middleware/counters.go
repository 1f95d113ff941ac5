package middleware

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
