package builtin_test

import (
	"testing"

	_ "github.com/socks5d/socks5d/builtin"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// TestRegistered checks that importing builtin registers every stage, each
// with a description, and that each builds from an empty configuration.
func TestRegistered(t *testing.T) {
	for _, typ := range []string{"accounting", "auth", "connlog", "iobuf", "ratelimit", "filter", "limits", "metrics"} {
		info, ok := middleware.Lookup(typ)
		if !ok {
			t.Errorf("%s is not registered", typ)
			continue
		}
		if info.Doc == "" {
			t.Errorf("%s has no Doc", typ)
		}
		if _, err := info.New(mwtest.Params(typ, nil)); err != nil {
			t.Errorf("%s with defaults: %v", typ, err)
		}
	}
}
