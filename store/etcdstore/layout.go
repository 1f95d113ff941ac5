package etcdstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/socks5d/socks5d/core"
)

// The keys under the prefix, one per item so that `etcdctl get --prefix`
// reads like the state and a value that does not parse is named by its key:
//
//	<prefix>users/<name>          {"role":"basic","hash":"$2a$..."}  (bcrypt only)
//	<prefix>deleted_users/<name>  {}    a configuration user deleted at run time
//	<prefix>settings/<key>        JSON value of a CONFIG setting ("iobuf.size")
//	<prefix>lists/<key>           JSON array of a list setting ("filter.rules")
//	<prefix>revision              written by every change (the change's guard)
//	<prefix>bans/<group>          {"until":"..."}  leased for the ban's length
//	<prefix>kills/<user>          {"at":"..."}     a fleet-wide KILL USER, leased
//	<prefix>counters/<key>        1048576   a shared counter (quota), decimal
const (
	dirUsers    = "users/"
	dirDeleted  = "deleted_users/"
	dirSettings = "settings/"
	dirLists    = "lists/"
	keyRevision = "revision"
	dirBans     = "bans/"
	dirKills    = "kills/"
	dirCounters = "counters/"
)

// stateDirs are the key groups that make up the state; a change compares
// each of them against the revision it was based on.
var stateDirs = []string{dirUsers, dirDeleted, dirSettings, dirLists}

// kind tells which part of the layout a key (without the prefix) is.
func kind(rel string) string {
	for _, d := range []string{dirUsers, dirDeleted, dirSettings, dirLists, dirBans, dirKills, dirCounters} {
		if strings.HasPrefix(rel, d) && len(rel) > len(d) {
			return d
		}
	}
	if rel == keyRevision {
		return keyRevision
	}
	return ""
}

// decodeJSON decodes one JSON value strictly: no unknown field, nothing after it.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON value")
	}
	return nil
}

// decodeState builds the state from the state keys (rel key → value).
// A value that does not parse is an error naming its key (wrapping
// core.ErrStoreValue); a key that is not socks5d's wraps ErrForeignKey.
func (s *Store) decodeState(kvs map[string][]byte) (*core.State, error) {
	st := core.NewState()
	for _, rel := range slices.Sorted(maps.Keys(kvs)) {
		v := kvs[rel]
		key := s.prefix + rel
		bad := func(err error) error {
			return fmt.Errorf("%w: key %s: %w", core.ErrStoreValue, key, err)
		}
		switch d := kind(rel); d {
		case dirUsers:
			var u core.StateUser
			if err := decodeJSON(v, &u); err != nil {
				return nil, bad(err)
			}
			name := rel[len(d):]
			one := core.NewState()
			one.Users[name] = u
			if err := one.Check("etcd key " + key); err != nil {
				return nil, bad(err)
			}
			st.Users[name] = u
		case dirDeleted:
			name := rel[len(d):]
			one := core.NewState()
			one.Deleted = []string{name}
			if err := one.Check("etcd key " + key); err != nil {
				return nil, bad(err)
			}
			st.Deleted = append(st.Deleted, name)
		case dirSettings:
			var x any
			if err := decodeJSON(v, &x); err != nil {
				return nil, bad(err)
			}
			if x == nil {
				return nil, bad(fmt.Errorf("null is not a setting's value"))
			}
			one := core.NewState()
			one.Settings[rel[len(d):]] = x
			if err := one.Check("etcd key " + key); err != nil {
				return nil, bad(err)
			}
			st.Settings[rel[len(d):]] = x
		case dirLists:
			var x []any
			if err := decodeJSON(v, &x); err != nil {
				return nil, bad(fmt.Errorf("want a JSON array: %w", err))
			}
			st.Lists[rel[len(d):]] = x
		case keyRevision, dirBans, dirKills, dirCounters:
		default:
			return nil, fmt.Errorf("%w: %s (is store.prefix %q right? socks5d keeps users/, deleted_users/, settings/, lists/, bans/, kills/, counters/ and revision there)", ErrForeignKey, key, s.prefix)
		}
	}
	return st, nil
}

// diff returns the operations that turn prev into next in the store.
func (s *Store) diff(prev, next *core.State) []clientv3.Op {
	var ops []clientv3.Op
	put := func(rel string, v any) {
		data, _ := json.Marshal(v) // state values came from JSON or YAML: they marshal
		ops = append(ops, clientv3.OpPut(s.prefix+rel, string(data)))
	}
	del := func(rel string) { ops = append(ops, clientv3.OpDelete(s.prefix+rel)) }
	for _, name := range slices.Sorted(maps.Keys(next.Users)) {
		if old, ok := prev.Users[name]; !ok || old != next.Users[name] {
			put(dirUsers+name, next.Users[name])
		}
	}
	for name := range prev.Users {
		if _, ok := next.Users[name]; !ok {
			del(dirUsers + name)
		}
	}
	for _, name := range next.Deleted {
		if !slices.Contains(prev.Deleted, name) {
			put(dirDeleted+name, struct{}{})
		}
	}
	for _, name := range prev.Deleted {
		if !slices.Contains(next.Deleted, name) {
			del(dirDeleted + name)
		}
	}
	for _, pair := range []struct {
		dir        string
		prev, next map[string]any
	}{{dirSettings, prev.Settings, next.Settings}, {dirLists, anyLists(prev.Lists), anyLists(next.Lists)}} {
		for _, k := range slices.Sorted(maps.Keys(pair.next)) {
			if old, ok := pair.prev[k]; !ok || !reflect.DeepEqual(old, pair.next[k]) {
				put(pair.dir+k, pair.next[k])
			}
		}
		for k := range pair.prev {
			if _, ok := pair.next[k]; !ok {
				del(pair.dir + k)
			}
		}
	}
	return ops
}

func anyLists(m map[string][]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
