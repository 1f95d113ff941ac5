package core

import (
	"fmt"

	"github.com/socks5d/socks5d/middleware"
)

// List settings are a stage's lists that PCTP edits item by item, such as
// the filter's rules (middleware.Editable). They are named
// "<stage name>.<key>" like the other settings, and numbered from 1.

// editable finds the live stage and list that key names.
func (r *Runtime) editable(key string) (middleware.Editable, string, string, error) {
	stages := r.snap.Load().Stages
	if i, list := stageKey(stageConfigs(stages), key); i >= 0 {
		if e, ok := stages[i].Middleware.(middleware.Editable); ok {
			if _, ok := e.Items(list); ok {
				return e, stages[i].Name, list, nil
			}
		}
	}
	return nil, "", "", fmt.Errorf("%w %q: no stage in the chain has that list", ErrUnknownSetting, key)
}

// Items returns the list setting key ("filter.rules"), one line per item.
func (a *Admin) Items(key string) ([]string, error) {
	e, _, list, err := a.r.editable(key)
	if err != nil {
		return nil, err
	}
	items, _ := e.Items(list)
	return items, nil
}

// InsertItem parses text as an item of the list key and inserts it so that
// it becomes item pos: 1 to one past the last item, or 0 to append. Any
// other position is refused, naming the valid range. The stage is rebuilt
// with the new list, so its validation applies.
func (a *Admin) InsertItem(key string, pos int, text string) error {
	e, name, list, err := a.r.editable(key)
	if err != nil {
		return err
	}
	item, err := e.ParseItem(list, text)
	if err != nil {
		return err
	}
	return a.r.editList(name, list, func(items []any) ([]any, error) {
		if pos < 0 || pos > len(items)+1 {
			return nil, fmt.Errorf("%w: %s: position %d is out of range 1..%d", middleware.ErrBadValue, key, pos, len(items)+1)
		}
		i := pos - 1
		if pos == 0 {
			i = len(items)
		}
		return append(items[:i], append([]any{item}, items[i:]...)...), nil
	})
}

// DeleteItem removes item index (1-based) from the list key.
func (a *Admin) DeleteItem(key string, index int) error {
	_, name, list, err := a.r.editable(key)
	if err != nil {
		return err
	}
	return a.r.editList(name, list, func(items []any) ([]any, error) {
		if index < 1 || index > len(items) {
			return nil, fmt.Errorf("%w: %s has no item %d (it has %d)", middleware.ErrBadValue, key, index, len(items))
		}
		return append(items[:index-1], items[index:]...), nil
	})
}

// editList replaces the list under key in stage name's configuration with
// what edit makes of a copy of it, through Update.
func (r *Runtime) editList(name, key string, edit func([]any) ([]any, error)) error {
	return r.change(func(d *Draft, st *State) error {
		for i := range d.Chain {
			if d.Chain[i].Name != name {
				continue
			}
			var items []any
			switch v := d.Chain[i].Config[key].(type) {
			case nil:
			case []any:
				items = append(items, v...)
			default:
				return fmt.Errorf("%w: %s.%s is not a list", middleware.ErrBadValue, name, key)
			}
			items, err := edit(items)
			if err != nil {
				return err
			}
			d.Chain[i].Config[key] = items
			st.Lists[name+"."+key] = items
			return nil
		}
		return fmt.Errorf("%w: no stage %q", ErrUnknownSetting, name)
	})
}
