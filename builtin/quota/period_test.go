package quota_test

import (
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/quota"
)

func TestPeriodBounds(t *testing.T) {
	madrid, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	tests := []struct {
		kind, zone  string
		at          time.Time
		start, next time.Time
		id          string
	}{
		{"day", "UTC", time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), "day:2026-12-03"},
		// 23:30 UTC on the 3rd is already the 4th in Madrid (UTC+1).
		{"day", "Europe/Madrid", time.Date(2026, 12, 3, 23, 30, 0, 0, time.UTC),
			time.Date(2026, 12, 4, 0, 0, 0, 0, madrid), time.Date(2026, 12, 5, 0, 0, 0, 0, madrid), "day:2026-12-04"},
		// The day the clocks go forward lasts 23 hours.
		{"day", "Europe/Madrid", time.Date(2026, 3, 29, 12, 0, 0, 0, madrid),
			time.Date(2026, 3, 29, 0, 0, 0, 0, madrid), time.Date(2026, 3, 30, 0, 0, 0, 0, madrid), "day:2026-03-29"},
		// Weeks start on Monday: Thursday 3 December 2026 is in the week of Monday 30 November.
		{"week", "UTC", time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "week:2026-11-30"},
		{"week", "UTC", time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC), // a Sunday
			time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "week:2026-11-30"},
		{"week", "UTC", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), // the Monday after
			time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 14, 0, 0, 0, 0, time.UTC), "week:2026-12-07"},
		{"month", "UTC", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "month:2026-12"},
		{"month", "Europe/Madrid", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC),
			time.Date(2027, 1, 1, 0, 0, 0, 0, madrid), time.Date(2027, 2, 1, 0, 0, 0, 0, madrid), "month:2027-01"},
		{"total", "UTC", time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), time.Time{}, time.Time{}, "total"},
	}
	for _, tt := range tests {
		start, next, id, err := quota.Bounds(tt.kind, tt.zone, tt.at)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.kind, tt.zone, err)
		}
		if !start.Equal(tt.start) || !next.Equal(tt.next) || id != tt.id {
			t.Errorf("%s %s at %s: %s..%s %q, want %s..%s %q", tt.kind, tt.zone, tt.at, start, next, id, tt.start, tt.next, tt.id)
		}
	}
}
