package core

import (
	"errors"
	"strings"
	"testing"
)

// named renames a chain entry.
func named(st StageConfig, name string) StageConfig {
	st.Name = name
	return st
}

// TestStatKeysNamedByStage: two copies of a stage print their keys under
// their names, so STATS shows each line once; a stage named by its type
// keeps its keys as they are.
func TestStatKeysNamedByStage(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"),
		stage("test.stats", "keys", []any{"hits", "test.stats_misses"}),
		named(stage("test.stats", "keys", []any{"hits", "a_misses"}), "a"),
		named(stage("test.stats", "keys", []any{"hits", "a.x"}), "b"),
	), nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range rt.Admin().Stats() {
		keys = append(keys, s.Key)
	}
	got := strings.Join(keys[:6], ",")
	if want := "hits,test.stats_misses,a.hits,a_misses,b.hits,b.a.x"; got != want {
		t.Errorf("keys = %s, want %s", got, want)
	}
}

// TestStatKeyCollisionsRefused: a chain in which two stages, or a stage and
// the engine, would print the same key is refused, naming both; at
// start-up and through a live change alike.
func TestStatKeyCollisionsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chain []StageConfig
		want  []string
	}{
		{"two types, one key", []StageConfig{
			stage("test.stats", "keys", []any{"hits"}),
			stage("test.stats2", "keys", []any{"hits"}),
		}, []string{`"hits"`, "chain[2] (test.stats2)", "chain[1] (test.stats)"}},
		{"a stage and the engine", []StageConfig{
			stage("test.stats", "keys", []any{"sessions_open"}),
		}, []string{`"sessions_open"`, "chain[1] (test.stats)", "the engine"}},
		{"a prefixed key and a renamed copy", []StageConfig{
			stage("test.stats", "keys", []any{"a.hits"}),
			named(stage("test.stats", "keys", []any{"hits"}), "a"),
		}, []string{`"a.hits"`, "chain[2] (a)", "chain[1] (test.stats)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRuntime(testConfig(append(defaultTestChain(), tc.chain...)...), nil)
			if !errors.Is(err, ErrConfig) || !errors.Is(err, ErrDuplicateStat) {
				t.Fatalf("err = %v, want ErrConfig and ErrDuplicateStat", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %s", err, w)
				}
			}
		})
	}
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.stats", "keys", []any{"hits"})), nil)
	if err != nil {
		t.Fatal(err)
	}
	before := rt.Snapshot()
	err = rt.Update(func(d *Draft) error {
		d.Chain = append(d.Chain, stage("test.stats2", "keys", []any{"hits"}))
		return nil
	})
	if !errors.Is(err, ErrDuplicateStat) || rt.Snapshot() != before {
		t.Errorf("live change: err = %v, snapshot changed %v; want ErrDuplicateStat and nothing changed", err, rt.Snapshot() != before)
	}
}
