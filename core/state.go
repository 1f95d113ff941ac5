package core

import (
	"fmt"
	"maps"
	"slices"

	"github.com/socks5d/socks5d/middleware"
)

const stateVersion = 1

// State is what administrators changed at run time, kept by a Store and
// applied on top of the configuration file at start-up and after every
// reload. Passwords are kept only as bcrypt hashes.
type State struct {
	Version int `json:"version"`
	// Users added (or re-added) at run time, by name.
	Users map[string]StateUser `json:"users"`
	// Deleted lists users of the configuration file deleted at run time:
	// they stay deleted although the file still has them.
	Deleted []string `json:"deleted_users"`
	// Settings changed with CONFIG, by "<stage>.<key>".
	Settings map[string]any `json:"settings"`
	// Lists edited item by item (RULE ADD/DEL), whole, by "<stage>.<key>".
	Lists map[string][]any `json:"lists"`
}

// StateUser is a user added at run time.
type StateUser struct {
	Role string `json:"role"` // admin or basic
	Hash string `json:"hash"` // bcrypt
}

func newState() *State {
	return &State{
		Version:  stateVersion,
		Users:    map[string]StateUser{},
		Settings: map[string]any{},
		Lists:    map[string][]any{},
	}
}

// clone returns a copy that a change may mutate.
func (st *State) clone() *State {
	c := &State{
		Version:  stateVersion,
		Users:    maps.Clone(st.Users),
		Deleted:  slices.Clone(st.Deleted),
		Settings: maps.Clone(st.Settings),
		Lists:    make(map[string][]any, len(st.Lists)),
	}
	for k, v := range st.Lists {
		c.Lists[k] = slices.Clone(v)
	}
	if c.Users == nil {
		c.Users = map[string]StateUser{}
	}
	if c.Settings == nil {
		c.Settings = map[string]any{}
	}
	return c
}

// valid checks what Load read; where names the file.
func (st *State) valid(where string) error {
	for name, u := range st.Users {
		if _, err := middleware.ParseRole(u.Role); err != nil {
			return fmt.Errorf("%w: state file %s: user %q: role %q", ErrState, where, name, u.Role)
		}
		if validCredential(name, "x") != nil || !IsBcryptHash(u.Hash) {
			return fmt.Errorf("%w: state file %s: user %q: bad name or hash", ErrState, where, name)
		}
	}
	return nil
}

// userAdded records a user added at run time.
func (st *State) userAdded(name string, e userEntry) {
	role := "basic"
	if e.role == middleware.RoleAdmin {
		role = "admin"
	}
	st.Users[name] = StateUser{Role: role, Hash: string(e.hash)}
	st.Deleted = slices.DeleteFunc(st.Deleted, func(n string) bool { return n == name })
}

// userDeleted records a deletion; a configuration user stays deleted.
func (st *State) userDeleted(name string, e userEntry) {
	delete(st.Users, name)
	if e.fromConfig && !slices.Contains(st.Deleted, name) {
		st.Deleted = append(st.Deleted, name)
		slices.Sort(st.Deleted)
	}
}

// apply lays the state over a draft built from the configuration. Users
// given with -u keep the password the flag gave (flags outrank the
// state). It returns the keys it could not apply because no stage of that
// name is in the chain any more.
func (st *State) apply(d *Draft) (skipped []string, err error) {
	for _, name := range st.Deleted {
		if e, ok := d.users.m[name]; ok && e.fromConfig && !e.fromFlag {
			delete(d.users.m, name)
		}
	}
	for name, u := range st.Users {
		if e, ok := d.users.m[name]; ok && e.fromFlag {
			continue
		}
		role, _ := middleware.ParseRole(u.Role) // checked by Load
		if err := d.users.setHashed(name, []byte(u.Hash), role, false); err != nil {
			return nil, fmt.Errorf("%w: user %q: %w", ErrState, name, err)
		}
	}
	set := func(key string, v any) bool {
		if e, ok := findEngineSetting(key); ok {
			str, _ := v.(string)
			dur, err := e.parse(str)
			if err == nil {
				*e.field(&d.Settings) = dur
			}
			return err == nil
		}
		i, sub := stageKey(d.Chain, key)
		if i >= 0 {
			d.Chain[i].Config[sub] = v
		}
		return i >= 0
	}
	for _, key := range slices.Sorted(maps.Keys(st.Settings)) {
		if !set(key, st.Settings[key]) {
			skipped = append(skipped, key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(st.Lists)) {
		if !set(key, slices.Clone(st.Lists[key])) {
			skipped = append(skipped, key)
		}
	}
	return skipped, nil
}
