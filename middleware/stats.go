package middleware

import "strings"

// Statistics: what a stage contributes to PCTP's STATS and STATS USER.

// Stat is one statistic, a key: value line of PCTP's STATS.
type Stat struct {
	Key   string
	Value int64
}

// StatsSource is implemented by a stage that contributes to STATS.
// Stats must be safe to call concurrently with traffic.
//
// Keys follow one rule, so that two stages never print the same line
// (STATS and the metrics endpoint show every key once): a stage named by
// its own type (the default, `name:` absent) prints its keys as they are,
// so a stage's historic keys (accounting's current_connections, say) stay
// as they always were; a stage under any other name has each key shown as
// "<name>.<key>", unless the key already begins with "<name>." or
// "<name>_". The engine applies the rule with StatKey when it collects
// STATS, so a stage only chooses its own keys and never reads its name for
// them. When the chain is compiled the engine reads every stage's keys and
// refuses a chain in which two stages, or a stage and the engine, would
// still print the same key, naming both: give one a `name:`.
type StatsSource interface {
	Stats() []Stat
}

// StatKey returns key as STATS shows it for a stage named name of type
// typ (see StatsSource for the rule).
func StatKey(name, typ, key string) string {
	if name == typ || strings.HasPrefix(key, name+".") || strings.HasPrefix(key, name+"_") {
		return key
	}
	return name + "." + key
}

// UserStatsSource is implemented by a stage that keeps numbers per user
// (PCTP's STATS USER <name>).
type UserStatsSource interface {
	// UserStats returns the user's numbers; ok is false for a user the
	// stage has no numbers for.
	UserStats(user string) (stats []Stat, ok bool)
}
