package core

import (
	"context"
	"fmt"
	"slices"

	"github.com/socks5d/socks5d/middleware"
)

// Admin is the administrators' view of a Runtime: what PCTP's Admin
// interface asks for (login, STATS, RECORDS, CONFIG and SET, users,
// sessions, list items, quotas). It holds no state of its own; every
// call reads the Runtime's live Snapshot or changes it through the
// Runtime's Update, so an Admin is as current as the Runtime it came
// from. Get one with Runtime.Admin.
//
// The methods that belong to one concern stay in that concern's file:
// Sessions and Kill in sessions.go, KillUser in fleet.go, Items,
// InsertItem and DeleteItem in lists.go, Purpose in purpose.go, Quotas
// and ResetQuota in quota.go.
type Admin struct {
	r *Runtime
}

// Admin returns the administrators' view of r.
func (r *Runtime) Admin() *Admin { return &Admin{r: r} }

// Login checks credentials for the admin port against the live table.
// A wrong password costs one bcrypt comparison whether or not the user
// exists; the admin port paces its own attempts.
//
// When a stage is a middleware.LoginSource (auth with a directory or a
// hook), it checks the login, so the directory's ADMINs may log in too.
func (a *Admin) Login(user, password string) (middleware.Role, bool) {
	snap := a.r.snap.Load()
	for _, st := range snap.Stages {
		if src, ok := st.Middleware.(middleware.LoginSource); ok {
			return src.Login(context.Background(), user, password)
		}
	}
	return snap.Users.Verify(user, password, nil)
}

// Stats returns the statistics of every stage that keeps some, in chain
// order and keyed by middleware.StatKey's rule, then the engine's own.
func (a *Admin) Stats() []middleware.Stat {
	var out []middleware.Stat
	snap := a.r.snap.Load()
	for _, st := range slices.Concat(snap.Stages, snap.chainOnlyStages()) {
		out = stageStats(out, st)
	}
	return a.r.engineStats(out)
}

// Records returns up to n connection records, newest first, from the first
// stage that keeps them.
func (a *Admin) Records(n int) []middleware.Record {
	for _, st := range a.r.snap.Load().Stages {
		if src, ok := st.Middleware.(middleware.LogSource); ok {
			return src.Records(n)
		}
	}
	return nil
}

// UserStats returns one user's numbers from every stage that keeps them
// per user (metrics, quota), in chain order; ok is false when none has
// numbers for the user.
func (a *Admin) UserStats(name string) ([]middleware.Stat, bool) {
	var out []middleware.Stat
	found := false
	for _, st := range a.r.snap.Load().Stages {
		if src, ok := st.Middleware.(middleware.UserStatsSource); ok {
			if stats, ok := src.UserStats(name); ok {
				out, found = append(out, stats...), true
			}
		}
	}
	return out, found
}

// Settings lists the live settings: the engine's own (socks.*), then
// every Tunable stage's, keyed "<stage name>.<key>".
func (a *Admin) Settings() []middleware.Setting {
	snap := a.r.snap.Load()
	out := engineSettingsOf(snap.Settings)
	for _, st := range snap.Stages {
		if t, ok := st.Middleware.(middleware.Tunable); ok {
			for _, s := range t.Settings() {
				s.Key = st.Name + "." + s.Key
				out = append(out, s)
			}
		}
	}
	return out
}

// Set changes one setting, "<stage name>.<key>", to value, read by
// middleware.ParseValue as YAML would read it (8000, 1MiB, 10s, true,
// [25, 465]). The stage is rebuilt with the new value, so its
// own validation applies; an invalid value changes nothing.
func (a *Admin) Set(key, value string) error {
	if e, ok := findEngineSetting(key); ok {
		d, err := e.parse(value)
		if err != nil {
			return err
		}
		return a.r.changeRebased(func(dr *Draft, st *State) error {
			*e.field(&dr.Settings) = d
			st.Settings[key] = d.String()
			return nil
		})
	}
	stages := a.r.snap.Load().Stages
	i, sub := stageKey(stageConfigs(stages), key)
	var name string
	if i >= 0 {
		name = stages[i].Name
	}
	if name == "" || !a.r.tunable(name, sub) {
		return fmt.Errorf("%w %q (see CONFIG for the settings there are)", ErrUnknownSetting, key)
	}
	v, err := middleware.ParseValue(value)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return a.r.changeRebased(func(d *Draft, st *State) error {
		for i := range d.Chain {
			if d.Chain[i].Name == name {
				d.Chain[i].Config[sub] = v
				st.Settings[name+"."+sub] = v
				return nil
			}
		}
		return fmt.Errorf("%w %q", ErrUnknownSetting, key)
	})
}

// tunable reports whether the live stage name lists key as a setting.
func (r *Runtime) tunable(name, key string) bool {
	for _, st := range r.snap.Load().Stages {
		if st.Name == name {
			return middleware.IsSetting(st.Middleware, key)
		}
	}
	return false
}

// Users lists the users, sorted by name.
func (a *Admin) Users() []middleware.User { return a.r.snap.Load().Users.List() }

// AddUser adds a user that can authenticate at once.
func (a *Admin) AddUser(name, password string, role middleware.Role) error {
	return a.r.changeRebased(func(d *Draft, st *State) error {
		if err := d.AddUser(name, password, role); err != nil {
			return err
		}
		st.userAdded(name, d.users.m[name])
		return nil
	})
}

// DeleteUser removes a user: new sessions are refused at once and the
// user's open sessions are closed.
func (a *Admin) DeleteUser(name string) error {
	return a.r.changeRebased(func(d *Draft, st *State) error {
		e := d.users.m[name]
		if err := d.DeleteUser(name); err != nil {
			return err
		}
		st.userDeleted(name, e)
		return nil
	})
}
