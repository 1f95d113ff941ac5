package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

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

// NewState returns an empty state, as a store that holds nothing loads.
func NewState() *State { return newState() }

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

// parseState reads a state file strictly: one JSON object, nothing after
// it but white space, no field this server does not know, the version it
// reads, and values it can apply. where names the file in errors.
func parseState(data []byte, where string) (*State, error) {
	corrupt := func(why string, args ...any) error {
		return fmt.Errorf("%w: state file %s is corrupt: %s (it was left in place; fix it or move it away to start from the configuration alone)", ErrState, where, fmt.Sprintf(why, args...))
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, corrupt("not a JSON object")
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: state file %s is corrupt: %w (it was left in place; fix it or move it away to start from the configuration alone)", ErrState, where, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, corrupt("data after the JSON object, at byte %d", dec.InputOffset())
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: state file %s has version %d, this server reads version %d", ErrState, where, st.Version, stateVersion)
	}
	if st.Users == nil {
		st.Users = map[string]StateUser{}
	}
	if st.Settings == nil {
		st.Settings = map[string]any{}
	}
	if st.Lists == nil {
		st.Lists = map[string][]any{}
	}
	return &st, st.valid("state file " + where)
}

// Check checks a state read from a store the way Load checks the state
// file: roles, names, hashes and engine settings. where names the source
// in errors (a file, a store key). The error wraps ErrState.
func (st *State) Check(where string) error { return st.valid(where) }

// valid checks what Load read; where names the source.
func (st *State) valid(where string) error {
	for name, u := range st.Users {
		if _, err := middleware.ParseRole(u.Role); err != nil {
			return fmt.Errorf("%w: %s: user %q: role %q", ErrState, where, name, u.Role)
		}
		if validCredential(name, "x") != nil || !IsBcryptHash(u.Hash) {
			return fmt.Errorf("%w: %s: user %q: bad name or hash", ErrState, where, name)
		}
	}
	for _, name := range st.Deleted {
		if validCredential(name, "x") != nil {
			return fmt.Errorf("%w: %s: deleted_users: bad name %q", ErrState, where, name)
		}
	}
	for key, v := range st.Settings {
		if e, ok := findEngineSetting(key); ok {
			if _, err := e.parseStored(v); err != nil {
				return fmt.Errorf("%w: %s: settings: %w", ErrState, where, err)
			}
		}
	}
	return nil
}

// parseStored reads the setting's value as the state file keeps it (a
// duration string).
func (e engineSetting) parseStored(v any) (time.Duration, error) {
	str, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%w: %s: must be a duration string such as \"10s\"", middleware.ErrBadValue, e.key)
	}
	return e.parse(str)
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
			dur, err := e.parseStored(v) // checked by Load: cannot fail
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
