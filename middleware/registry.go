package middleware

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Info describes a stage type for the registry.
type Info struct {
	// Type is the name used after `use:` in the chain list.
	Type string
	// New builds a stage from its configuration. It must have no side
	// effects beyond reading p.Shared: it is called again on every change of
	// the live configuration, and the change may still fail. A stage that
	// applies its settings to shared state does it in Activate
	// (Activator), once its chain is live.
	New func(p Params) (Middleware, error)
	// Before lists stage types that must not appear earlier in the chain
	// when this one is present (checked when the chain is built): forward
	// comes before filter, so that the policy's dialer wraps the egress
	// dialer and decides first.
	Before []string
	// Doc is a one-line description, shown in errors and help.
	Doc string
}

// Params is what New gets.
type Params struct {
	// Name is the stage's name in the chain (its `name:`, or its type). It
	// is the key for state kept in Shared across rebuilds.
	Name string
	// Config is the stage's entry of the chain list, without `use:` and
	// `name:`. Decode it with Decode, which is strict.
	Config map[string]any
	// Logger is named middleware.<name>.
	Logger hclog.Logger
	// Shared keeps state that must outlive a rebuild of the chain.
	Shared *Shared
	// Users is the live user table.
	Users Credentials
	// DataDir is the server's data directory, where a stage keeps files
	// (relative paths in its settings are relative to it).
	DataDir string
	// Bans is the fleet's shared ban board, nil on a single node.
	Bans BanBoard
	// Counters keeps counters across restarts through the server's state
	// store (nil: the server keeps none, counts live in memory only).
	Counters CounterStore
}

// Decode decodes p.Config into v (a pointer to a struct with json tags),
// rejecting unknown keys with an error that names the known ones.
func (p Params) Decode(v any) error { return Decode(p.Config, v) }

var (
	registryMu sync.RWMutex
	registry   = map[string]Info{}
)

// Register adds a stage type. Call it from an init function. It panics on
// an empty type, a nil New or a duplicate, so a bad registration fails at
// start-up.
func Register(info Info) {
	if info.Type == "" || info.New == nil {
		panic("middleware: Register needs a Type and a New")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[info.Type]; dup {
		panic(fmt.Sprintf("middleware: stage type %q registered twice", info.Type))
	}
	registry[info.Type] = info
}

// Lookup returns the registered stage type t.
func Lookup(t string) (Info, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	info, ok := registry[t]
	return info, ok
}

// Types returns the registered stage types, sorted.
func Types() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}
