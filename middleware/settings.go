package middleware

// Live settings: what PCTP's CONFIG and list editing read and change.

// Setting is one live setting of a stage, as PCTP's CONFIG lists it.
type Setting struct {
	Key   string // the key in the stage's YAML entry
	Value string // its current value
	Help  string // one line
}

// Tunable is implemented by a stage whose settings may be read and changed
// while the proxy runs (PCTP CONFIG). A change is applied by rebuilding the
// stage from its configuration with the new value, so New validates it; a
// Tunable stage only lists which keys may change.
//
// CONFIG <stage name>.<key>=<text> is applied in four steps: the live
// stage must list key (IsSetting); the text is read by ParseValue (nil is
// refused); the stage's entry gets the value under key; and the whole
// chain is rebuilt, each stage by its type's New with the same Shared
// pool, so the stage's own validation decides and state kept in Shared
// carries over. If any step fails nothing changes. mwtest.Set applies a
// change to one stage the same way. Declare settings with the value types
// of valuetypes.go (List, Port, PortRange, Duration, Size), which take
// every form ParseValue gives (80, "80,443", [80, 443]), and print Value
// with their String, which CONFIG reads back unchanged.
type Tunable interface {
	Settings() []Setting
}

// IsSetting reports whether mw is Tunable and lists key among its
// settings: whether CONFIG may change key.
func IsSetting(mw Middleware, key string) bool {
	t, ok := mw.(Tunable)
	if !ok {
		return false
	}
	for _, s := range t.Settings() {
		if s.Key == key {
			return true
		}
	}
	return false
}

// Editable is implemented by a stage with list settings that PCTP edits
// item by item, such as a destination policy's rules. The list is a key of
// the stage's YAML entry; an edit inserts or removes one item there and
// rebuilds the stage, so New validates the result.
type Editable interface {
	// Items returns the list under key, one line of text per item, in
	// order; ok is false when the stage has no such list.
	Items(key string) (items []string, ok bool)
	// ParseItem turns one line of text into the value New expects as an
	// item of the list key (the same shape as in the YAML file).
	ParseItem(key, text string) (any, error)
}
