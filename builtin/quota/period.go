package quota

import (
	"fmt"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// Periods, as named by the period key.
const (
	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
	PeriodTotal = "total"
)

// period says when a user's count starts again from 0: at midnight of each
// day, each Monday, or each first of the month, in a time zone; or never
// (total).
type period struct {
	kind string
	zone string // the time_zone as written
	loc  *time.Location
}

// same reports whether q is the same setting as p.
func (p period) same(q period) bool { return p.kind == q.kind && p.zone == q.zone }

func parsePeriod(kind, zone string) (period, error) {
	switch kind {
	case PeriodDay, PeriodWeek, PeriodMonth, PeriodTotal:
	default:
		return period{}, fmt.Errorf("%w: key \"period\": %q is not day, week, month or total", middleware.ErrBadValue, kind)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "" || zone == "Local" {
		return period{}, fmt.Errorf("%w: key \"time_zone\": %q is not an IANA time zone (e.g. UTC, Europe/Madrid)", middleware.ErrBadValue, zone)
	}
	return period{kind: kind, zone: zone, loc: loc}, nil
}

// bounds returns the period t falls in: its start and the start of the
// next one (both zero for total), and an id naming it in counter keys
// and PCTP ("month:2026-12", "week:2026-11-30", "day:2026-12-03",
// "total").
func (p period) bounds(t time.Time) (start, next time.Time, id string) {
	t = t.In(p.loc)
	y, m, d := t.Date()
	switch p.kind {
	case PeriodDay:
		start = time.Date(y, m, d, 0, 0, 0, 0, p.loc)
		next = time.Date(y, m, d+1, 0, 0, 0, 0, p.loc)
	case PeriodWeek: // weeks start on Monday (ISO 8601)
		back := (int(t.Weekday()) + 6) % 7
		start = time.Date(y, m, d-back, 0, 0, 0, 0, p.loc)
		next = time.Date(y, m, d-back+7, 0, 0, 0, 0, p.loc)
	case PeriodMonth:
		start = time.Date(y, m, 1, 0, 0, 0, 0, p.loc)
		next = time.Date(y, m+1, 1, 0, 0, 0, 0, p.loc)
		return start, next, p.kind + ":" + start.Format("2006-01")
	default:
		return time.Time{}, time.Time{}, PeriodTotal
	}
	return start, next, p.kind + ":" + start.Format("2006-01-02")
}
