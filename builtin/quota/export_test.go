package quota

import (
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// SetClock makes the usage of the stage named name in p use now as its
// clock; call it before building the stage.
func SetClock(p middleware.Params, now func() time.Time) {
	middleware.Get(p.Shared, p.Name+".usage", func() *usage { return newUsage(p.Counters, p.Logger, p.Name) }).now = now
}

// Save writes the pending counts of the stage named name now, as the save
// loop does every save_interval.
func Save(shared *middleware.Shared, name string) {
	middleware.Get(shared, name+".usage", func() *usage { panic("no quota stage " + name) }).flush()
}

// Bounds exposes the period arithmetic.
func Bounds(kind, zone string, t time.Time) (start, next time.Time, id string, err error) {
	p, err := parsePeriod(kind, zone)
	if err != nil {
		return
	}
	start, next, id = p.bounds(t)
	return
}
