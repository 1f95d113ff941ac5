package auth

import (
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// SetCacheClock makes the cache of the stage named name in shared use now
// as its clock; call it before building the stage.
func SetCacheClock(shared *middleware.Shared, name string, now func() time.Time) {
	middleware.Get(shared, name+".cache", newCache).now = now
}
