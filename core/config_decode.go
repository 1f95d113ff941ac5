package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/socks5d/socks5d/middleware"
)

// Strict decoding: every key is known, and every value is read as its
// field's type without guessing. The YAML parser has already typed what
// it read (true, 0x10 and 000123 are numbers or booleans, .inf a float),
// so a string key given anything but a string is refused ("quote it")
// rather than converted to text the operator did not write; a number key
// takes a whole number (from a string only in base 10: the environment and
// flags are text); a duration needs a unit.

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// decodeConfig decodes the merged sources into cfg.
func decodeConfig(raw map[string]any, cfg *Config) error {
	if err := checkKeys(raw, reflect.TypeFor[Config](), ""); err != nil {
		return err
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  strictHook,
		ErrorUnused: true, // checkKeys names the key first; this is a backstop
		Result:      cfg,
		TagName:     "koanf",
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := dec.Decode(raw); err != nil {
		return decodeError(err)
	}
	return nil
}

// KeyError is a configuration error about one key; it is ErrConfig
// (errors.Is), and errors.As finds the key, so a caller can tell which
// source set it (cmd names the flag) without reading the message.
type KeyError struct {
	Key string // "socks.port", "users[0].password"
	Err error  // why
}

func (e *KeyError) Error() string { return ErrConfig.Error() + ": " + e.Key + ": " + e.Err.Error() }

// Unwrap returns ErrConfig and the reason.
func (e *KeyError) Unwrap() []error { return []error{ErrConfig, e.Err} }

// keyError builds a *KeyError from a format.
func keyError(key, format string, args ...any) error {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// decodeError names the key of the first value that could not be decoded.
func decodeError(err error) error {
	var de *mapstructure.DecodeError
	if errors.As(err, &de) && de.Name() != "" {
		return &KeyError{Key: de.Name(), Err: de.Unwrap()}
	}
	return fmt.Errorf("%w: %w", ErrConfig, err)
}

// strictHook converts a value to its field's type only where nothing is
// guessed; anything else is an error (mapstructure names the key).
func strictHook(from, to reflect.Value) (any, error) {
	v := from.Interface()
	switch {
	case to.Type() == durationType:
		return decodeDuration(v)
	case reflect.PointerTo(to.Type()).Implements(unmarshalerType):
		// The kit's value types (middleware.PortRange, ...) read every
		// form an operator types, as they do in a stage's settings.
		return decodeJSON(v, to.Type())
	case to.Kind() == reflect.String:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("must be a string; quote it (the file has %s)", kindOf(v))
	case to.Kind() == reflect.Slice && to.Type().Elem().Kind() == reflect.String:
		if s, ok := v.(string); ok { // the environment, a flag: comma-separated
			if strings.TrimSpace(s) == "" {
				return []string{}, nil
			}
			parts := strings.Split(s, ",")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			return parts, nil
		}
		return v, nil
	case to.Kind() == reflect.Int:
		return decodeInt(v)
	case to.Kind() == reflect.Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string: // the environment, a flag
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
			return nil, fmt.Errorf("%q is not true or false", x)
		}
		return nil, fmt.Errorf("must be true or false, got %s", kindOf(v))
	}
	return v, nil
}

// decodeDuration reads a duration: text with a unit, or the number 0.
func decodeDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		return middleware.ParseDuration(x)
	case int, int64, uint64, float64:
		return middleware.ParseDuration(fmt.Sprint(x)) // 0, else "write 10s"
	}
	return 0, fmt.Errorf("must be a duration such as 10s, got %s", kindOf(v))
}

// decodeJSON reads v into a new value of type t, which reads JSON.
func decodeJSON(v any, t reflect.Type) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	p := reflect.New(t)
	if err := json.Unmarshal(raw, p.Interface()); err != nil {
		return nil, err
	}
	return p.Elem().Interface(), nil
}

// decodeInt reads a whole number: an integer, or base-10 text.
func decodeInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x), nil
		}
	case uint64:
		if x <= math.MaxInt {
			return int(x), nil
		}
	case string:
		n, err := strconv.ParseInt(x, 10, 0)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number", x)
		}
		return int(n), nil
	case float64:
		return 0, fmt.Errorf("must be a whole number, got %v", x)
	default:
		return 0, fmt.Errorf("must be a whole number, got %s", kindOf(v))
	}
	return 0, fmt.Errorf("%v is out of range", v)
}

// kindOf names what the YAML parser made of a value, without the value
// (it may be a password).
func kindOf(v any) string {
	switch v.(type) {
	case bool:
		return "true/false"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", v)
}

// checkKeys refuses a key that matches no field of t, naming it and the
// known ones, and a scalar key with no value. path is where m sits (""
// for the top level).
func checkKeys(m map[string]any, t reflect.Type, path string) error {
	for _, key := range slices.Sorted(maps.Keys(m)) {
		f, ok := fieldByKey(t, key)
		if !ok {
			where := "unknown top-level key"
			if path != "" {
				where = path + ": unknown key"
			}
			return fmt.Errorf("%w: %s %q (known: %s)", ErrConfig, where, key, strings.Join(knownKeys(t, path == ""), ", "))
		}
		sub := key
		if path != "" {
			sub = path + "." + key
		}
		switch ft := f.Type; {
		case m[key] == nil && ft.Kind() != reflect.Slice:
			// "key:" with nothing after it: refused rather than read as
			// zero, or, for a section, rather than dropping its defaults.
			return keyError(sub, "no value (write one, or remove the key)")
		case ft.Kind() == reflect.Struct:
			if mm, ok := m[key].(map[string]any); ok {
				if err := checkKeys(mm, ft, sub); err != nil {
					return err
				}
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			list, _ := m[key].([]any)
			for i, item := range list {
				if mm, ok := item.(map[string]any); ok {
					if err := checkKeys(mm, ft.Elem(), fmt.Sprintf("%s[%d]", sub, i)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// fieldByKey finds the field of struct t tagged koanf:"key".
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("koanf"); tag == key && tag != "-" {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// knownKeys lists the koanf keys of struct t, sorted; the top level also
// has chain and chains (decoded by hand).
func knownKeys(t reflect.Type, top bool) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("koanf"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	if top {
		keys = append(keys, "chain", "chains")
	}
	slices.Sort(keys)
	return keys
}
