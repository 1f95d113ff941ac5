package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Decode decodes a stage's configuration map into v, a pointer to a struct
// whose fields carry json tags. It is strict: a key that matches no field is
// an error wrapping ErrUnknownKey that names the known keys, and a value of
// the wrong type is an error wrapping ErrBadValue that names the key. Keys
// absent from cfg leave their fields as they were, so set defaults first.
func Decode(cfg map[string]any, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%w: Decode needs a pointer to a struct, got %T", ErrBadValue, v)
	}
	fields := keyFields(rv.Elem().Type())
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report errors in a stable order
	for _, k := range keys {
		idx, ok := fields[k]
		if !ok {
			known := strings.Join(KnownKeys(v), ", ")
			if known == "" {
				known = "none: this stage takes no settings"
			}
			return fmt.Errorf("%w %q (known: %s)", ErrUnknownKey, k, known)
		}
		raw, err := json.Marshal(cfg[k])
		if err != nil {
			return fmt.Errorf("%w: key %q: %w", ErrBadValue, k, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(rv.Elem().Field(idx).Addr().Interface()); err != nil {
			return fmt.Errorf("%w: key %q: %s", ErrBadValue, k, describeJSONError(err))
		}
	}
	return nil
}

// KnownKeys returns the configuration keys of the struct v points to.
func KnownKeys(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	keys := make([]string, 0, t.NumField())
	for k := range keyFields(t) {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func keyFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("want %s, got %s", te.Type, te.Value)
	}
	// Our own value types already say "bad value"; say it once.
	return strings.TrimPrefix(err.Error(), ErrBadValue.Error()+": ")
}

// Size is a byte count in a configuration file: a number (bytes) or a
// string with a unit, such as "64KiB", "1MiB", "2GB".
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseSize parses a size such as 4096, "64KiB" or "1MB".
func ParseSize(s string) (Size, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%w: %q is not a size (e.g. 4096, 64KiB, 1MiB)", ErrBadValue, s)
	}
	return Size(n * mult), nil
}

// UnmarshalJSON accepts a number of bytes or a string with a unit.
func (s *Size) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := ParseSize(str)
		if err != nil {
			return err
		}
		*s = v
		return nil
	}
	var n int64
	if string(b) == "null" || json.Unmarshal(b, &n) != nil || n < 0 {
		return fmt.Errorf("%w: %s is not a size", ErrBadValue, b)
	}
	*s = Size(n)
	return nil
}

// String prints the size in bytes, as settings are listed.
func (s Size) String() string { return strconv.FormatInt(int64(s), 10) }

// Duration is a time span in a configuration file: a Go duration with a
// unit, such as "10s", "1m30s" or "500ms" (see ParseDuration). A number
// without a unit is refused, 0 alone excepted.
type Duration time.Duration

// ValueError is a configuration value that cannot be read, with the
// reason; it is ErrBadValue (errors.Is). Its text does not repeat the
// sentinel's, so a caller may put it after the key it names.
type ValueError struct {
	Value  string // the value as written
	Reason string // e.g. "is a number without a unit; write 10s"
}

func (e *ValueError) Error() string { return fmt.Sprintf("%q %s", e.Value, e.Reason) }

// Is reports whether target is ErrBadValue.
func (e *ValueError) Is(target error) bool { return target == ErrBadValue }

// ParseDuration parses a duration as the configuration file, the
// environment and PCTP CONFIG write it: a Go duration with a unit ("10s",
// "1m30s", "500ms", "-1s"), or 0. A number without a unit (10, 1.5, 1e300)
// is refused with a hint ("write 10s") rather than read in nanoseconds or
// seconds. Errors are *ValueError; the caller checks the range.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if f == 0 && err == nil {
			return 0, nil
		}
		if strings.ContainsAny(t, "eEinfINFxX") || err != nil {
			return 0, &ValueError{s, "is a number without a unit (write a duration such as 10s, 1m30s, 500ms)"}
		}
		return 0, &ValueError{s, "is a number without a unit; write " + t + "s (or ms, m, h)"}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, &ValueError{s, "is not a duration (e.g. 10s, 1m30s, 500ms)"}
	}
	return d, nil
}

// UnmarshalJSON accepts a duration string ("10s") or the number 0; any
// other number is refused (it has no unit), as is a negative duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	str := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
	}
	v, err := ParseDuration(str)
	if err != nil {
		return err
	}
	if v < 0 {
		return &ValueError{str, "is negative"}
	}
	*d = Duration(v)
	return nil
}

// String prints the duration as Go does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }
