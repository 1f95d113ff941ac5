package middleware

// Statistics: what a stage contributes to PCTP's STATS and STATS USER.

// Stat is one statistic, a key: value line of PCTP's STATS.
type Stat struct {
	Key   string
	Value int64
}

// StatsSource is implemented by a stage that contributes to STATS.
// Stats must be safe to call concurrently with traffic.
type StatsSource interface {
	Stats() []Stat
}

// UserStatsSource is implemented by a stage that keeps numbers per user
// (PCTP's STATS USER <name>).
type UserStatsSource interface {
	// UserStats returns the user's numbers; ok is false for a user the
	// stage has no numbers for.
	UserStats(user string) (stats []Stat, ok bool)
}
