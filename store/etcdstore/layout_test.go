package etcdstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/core"
)

const testHash = "$2a$04$92qAHrAwxwWKbS.flKCjiesXRclqHzKrKpkwaTdogGLS6303OGlR2"

func TestDecodeStateRefusesNamingTheKey(t *testing.T) {
	s := &Store{prefix: "/socks5d/"}
	good := map[string][]byte{
		"users/alice":           []byte(`{"role":"basic","hash":"` + testHash + `"}`),
		"deleted_users/bob":     []byte(`{}`),
		"settings/socks.linger": []byte(`"5s"`),
		"lists/filter.rules":    []byte(`[{"dest":["127.0.0.1"]}]`),
		"revision":              []byte(`{}`),
		"bans/127.0.0.2-32":     []byte(`{}`),
	}
	st, err := s.decodeState(good)
	if err != nil || len(st.Users) != 1 || st.Deleted[0] != "bob" || st.Settings["socks.linger"] != "5s" || len(st.Lists["filter.rules"]) != 1 {
		t.Fatalf("decodeState = %+v, %v", st, err)
	}
	for _, tt := range []struct {
		key, value string
		want       error
	}{
		{"users/mallory", `not json`, core.ErrStoreValue},
		{"users/mallory", `{"role":"root","hash":"` + testHash + `"}`, core.ErrStoreValue},
		{"users/mallory", `{"role":"basic","hash":"plaintext"}`, core.ErrStoreValue},
		{"users/mallory", `{"role":"basic","hash":"` + testHash + `","password":"x"}`, core.ErrStoreValue},
		{"settings/socks.linger", `"soon"`, core.ErrStoreValue},
		{"settings/iobuf.size", `null`, core.ErrStoreValue},
		{"lists/filter.rules", `{"a":1}`, core.ErrStoreValue},
		{"config/something", `1`, ErrForeignKey},
	} {
		kvs := map[string][]byte{tt.key: []byte(tt.value)}
		_, err := s.decodeState(kvs)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "/socks5d/"+tt.key) {
			t.Errorf("%s = %q: err %v, want %v naming the key", tt.key, tt.value, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), testHash) {
			t.Errorf("the error shows a hash: %v", err)
		}
	}
}

// diff writes exactly what changed, and decoding what it writes gives the
// new state back.
func TestDiffRoundTrip(t *testing.T) {
	s := &Store{prefix: "/p/"}
	prev := core.NewState()
	prev.Users["alice"] = core.StateUser{Role: "basic", Hash: testHash}
	prev.Users["gone"] = core.StateUser{Role: "basic", Hash: testHash}
	prev.Settings["socks.linger"] = "5s"
	next := core.NewState()
	next.Users["alice"] = prev.Users["alice"]
	next.Users["new"] = core.StateUser{Role: "admin", Hash: testHash}
	next.Deleted = []string{"bob"}
	next.Settings["socks.linger"] = "5s"
	next.Settings["iobuf.size"] = 9000
	next.Lists["filter.rules"] = []any{"x"}
	ops := s.diff(prev, next)
	kvs := map[string][]byte{
		"users/alice":           []byte(`{"role":"basic","hash":"` + testHash + `"}`),
		"users/gone":            []byte(`{"role":"basic","hash":"` + testHash + `"}`),
		"settings/socks.linger": []byte(`"5s"`),
	}
	var keys []string
	for _, op := range ops {
		rel := strings.TrimPrefix(string(op.KeyBytes()), "/p/")
		keys = append(keys, rel)
		switch {
		case op.IsPut():
			kvs[rel] = op.ValueBytes()
		case op.IsDelete():
			delete(kvs, rel)
		}
	}
	if strings.Join(keys, " ") != "users/new users/gone deleted_users/bob settings/iobuf.size lists/filter.rules" {
		t.Errorf("diff wrote %v", keys)
	}
	got, err := s.decodeState(kvs)
	if err != nil || len(got.Users) != 2 || got.Users["new"].Role != "admin" || got.Settings["iobuf.size"] != 9000.0 || len(got.Deleted) != 1 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}
