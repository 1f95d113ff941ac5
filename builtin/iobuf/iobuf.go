// Package iobuf is the "iobuf" stage: it sets the relay buffer size of new
// connections. It is the setting PCTP's CONFIG IO= changes.
package iobuf

import (
	"context"
	"fmt"
	"strconv"

	"github.com/socks5d/socks5d/middleware"
)

// Type is the stage type, as named after `use:` in the chain list.
const Type = "iobuf"

// Limits and default of the size key, in bytes.
const (
	// DefaultSize is the buffer size when the key is absent.
	DefaultSize = 32 << 10
	// MinSize is the smallest size; a smaller value is an error.
	MinSize = 4096
	// MaxSize is the largest size; a larger value is an error.
	MaxSize = 16 << 20
)

func init() {
	middleware.Register(middleware.Info{
		Type: Type,
		New:  New,
		Doc:  "sets the relay buffer size of new connections (PCTP CONFIG IO=)",
	})
}

// Config is the stage's entry in the chain list.
type Config struct {
	// Size is the relay buffer size in bytes.
	Size middleware.Size `json:"size"`
}

// DefaultConfig returns the configuration used for absent keys.
func DefaultConfig() Config { return Config{Size: DefaultSize} }

// stage is immutable after New.
type stage struct {
	size int
}

var (
	_ middleware.Middleware = (*stage)(nil)
	_ middleware.Tunable    = (*stage)(nil)
	_ middleware.Purposeful = (*stage)(nil)
)

// New builds the stage from p. It is registered as the "iobuf" type.
func New(p middleware.Params) (middleware.Middleware, error) {
	cfg := DefaultConfig()
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Size < MinSize || cfg.Size > MaxSize {
		return nil, fmt.Errorf("%w: key %q: %d: %w", middleware.ErrBadValue, "size", cfg.Size, ErrSizeRange)
	}
	return &stage{size: int(cfg.Size)}, nil
}

// Wrap sets the session's IO size before next.
func (st *stage) Wrap(next middleware.Handler) middleware.Handler {
	return middleware.HandlerFunc(func(ctx context.Context, s *middleware.Session) error {
		s.IOSize = st.size
		return next.ServeConn(ctx, s)
	})
}

// Settings implements middleware.Tunable.
func (st *stage) Settings() []middleware.Setting {
	return []middleware.Setting{{
		Key:   "size",
		Value: strconv.Itoa(st.size),
		Help:  fmt.Sprintf("relay buffer size in bytes for new connections (%d..%d)", MinSize, MaxSize),
	}}
}

// Purpose implements middleware.Purposeful: the size key is the IO size
// (PCTP's CONFIG IO=).
func (st *stage) Purpose(p middleware.Purpose) (string, bool) {
	return "size", p == middleware.PurposeIOSize
}
