package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// persistConfig is a configuration with a file user (bob), a -u admin,
// a tunable stage and an editable list.
func persistConfig() *Config {
	cfg := testConfig(stage("test.auth"), stage("test.iosize", "size", 5000), stage("test.list", "items", []any{"a"}))
	cfg.Users[0].FromFlag = true // admin, as if given with -u
	return cfg
}

func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "state.json")
	rt, err := NewRuntime(persistConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.UseStore(NewFileStore(path)); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		rt.Admin().AddUser("carol", "secret", middleware.RoleBasic),
		rt.Admin().AddUser("admin2", "pw2", middleware.RoleAdmin),
		rt.Admin().DeleteUser("bob"), // a file user: stays deleted
		rt.Admin().Set("test.iosize.size", "9000"),
		rt.Admin().InsertItem("test.list.items", 0, "b"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "secret") || !strings.Contains(string(data), "$2a$") {
		t.Fatalf("the state file must hold bcrypt hashes only:\n%s", data)
	}

	// A restart: the same configuration, the same store.
	rt2, err := NewRuntime(persistConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	skipped, err := rt2.UseStore(NewFileStore(path))
	if err != nil || len(skipped) != 0 {
		t.Fatalf("UseStore: %v (skipped %v)", err, skipped)
	}
	if got := fmt.Sprint(rt2.Admin().Users()); got != "[{admin Admin} {admin2 Admin} {carol Basic}]" {
		t.Errorf("users after restart = %s", got)
	}
	if _, ok := rt2.Admin().Login("carol", "secret"); !ok {
		t.Error("carol cannot log in after a restart")
	}
	if _, ok := rt2.Admin().Login("admin", "password"); !ok {
		t.Error("the -u admin lost its flag password")
	}
	if s := setting(rt2, "test.iosize.size"); s != "9000" {
		t.Errorf("settings after restart = %+v", s)
	}
	if items, _ := rt2.Admin().Items("test.list.items"); strings.Join(items, ",") != "a,b" {
		t.Errorf("list after restart = %v", items)
	}
	// A reload of the file keeps what administrators changed.
	if err := rt2.Reload(persistConfig()); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rt2.Admin().Users()); got != "[{admin Admin} {admin2 Admin} {carol Basic}]" {
		t.Errorf("users after reload = %s", got)
	}
	if s := setting(rt2, "test.iosize.size"); s != "9000" {
		t.Errorf("settings after reload = %+v", s)
	}
	// A saved setting whose stage left the chain is reported, not fatal.
	cfg := persistConfig()
	cfg.Chain = cfg.Chain[:1]
	rt3, err := NewRuntime(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if skipped, err := rt3.UseStore(NewFileStore(path)); err != nil || len(skipped) != 2 {
		t.Fatalf("UseStore without the stages: %v, skipped %v", err, skipped)
	}
}

func TestCorruptStateStopsStartup(t *testing.T) {
	for name, body := range map[string]string{
		"not json":      "{\"version\": 1, \"users\": ",
		"bad syntax":    "{\"version\": 1,, }",
		"unknown field": `{"version": 1, "colour": "red"}`,
		"bad version":   `{"version": 7}`,
		"bad hash":      `{"version": 1, "users": {"x": {"role": "basic", "hash": "plaintext"}}}`,
		// Parsed strictly: one object, nothing after it, no unknown
		// field at any depth, a version, settings that can apply.
		"trailing garbage":      `{"version": 1}garbage`,
		"a second object":       `{"version": 1} {"version": 1}`,
		"trailing bracket":      `{"version": 1}}`,
		"not an object":         `null`,
		"an array":              `[{"version": 1}]`,
		"no version":            `{}`,
		"unknown user field":    `{"version": 1, "users": {"x": {"role": "basic", "hash": "$2a$04$92qAHrAwxwWKbS.flKCjiesXRclqHzKrKpkwaTdogGLS6303OGlR2", "colour": "red"}}}`,
		"bare number duration":  `{"version": 1, "settings": {"socks.handshake_timeout": "10"}}`,
		"duration out of range": `{"version": 1, "settings": {"socks.handshake_timeout": "10ns"}}`,
		"duration not a string": `{"version": 1, "settings": {"socks.linger": 60}}`,
		"bad deleted user":      `{"version": 1, "deleted_users": [""]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			rt, err := NewRuntime(persistConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rt.UseStore(NewFileStore(path))
			if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrState naming %s", err, path)
			}
			// The decoder's own error is kept, not flattened to text.
			var syntax *json.SyntaxError
			if name == "bad syntax" && !errors.As(err, &syntax) {
				t.Errorf("err = %v, want it to wrap the *json.SyntaxError", err)
			}
			if after, _ := os.ReadFile(path); string(after) != body {
				t.Fatal("the corrupt state file was changed")
			}
		})
	}
}

// failingStore refuses every save.
type failingStore struct{}

func (failingStore) Load() (*State, error) { return newState(), nil }
func (failingStore) Save(*State) error     { return errors.New("disk full") }

func TestUnsavedChangeIsRefused(t *testing.T) {
	rt, err := NewRuntime(persistConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.UseStore(failingStore{}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().AddUser("carol", "secret", middleware.RoleBasic); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("AddUser = %v", err)
	}
	if _, ok := rt.Admin().Login("carol", "secret"); ok {
		t.Fatal("a change that was not saved took effect")
	}
}

// A state file whose trailing white space is all that follows the object
// is fine (the server writes a newline after it).
func TestStateTrailingWhiteSpace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, []byte(`{"version": 1, "users": {"x": {"role": "basic", "hash": "$2a$04$92qAHrAwxwWKbS.flKCjiesXRclqHzKrKpkwaTdogGLS6303OGlR2"}}, "settings": {"socks.linger": "5s"}}`+"\n\n \t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := NewFileStore(path).Load()
	if err != nil || st.Settings["socks.linger"] != "5s" || len(st.Users) != 1 || st.Lists == nil {
		t.Fatalf("Load = %+v, %v", st, err)
	}
}

// A user given with -u cannot be deleted over PCTP: the flag would bring
// it back at the next reload (the flag outranks the saved state), so DEL
// is refused with a reason instead of answering +OK and undoing itself.
// A file user's deletion holds across a reload through the same path
// SIGHUP takes (LoadConfig, then Reload).
func TestDeleteFlagUserIsRefused(t *testing.T) {
	t.Chdir(t.TempDir())
	file := writeFile(t, "users:\n  - {name: bob, password: builder, role: basic}\nchain:\n  - use: test.auth\n")
	opts := LoadOptions{File: file, Users: []string{"admin:password", "root:secret"}}
	cfg, err := LoadConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if _, err := rt.UseStore(NewFileStore(path)); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().DeleteUser("root"); !errors.Is(err, ErrUserFromFlag) || !strings.Contains(err.Error(), "-u") {
		t.Fatalf("DeleteUser of a -u user = %v, want ErrUserFromFlag", err)
	}
	if err := rt.Admin().DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	want := "[{admin Admin} {root Admin}]"
	if got := fmt.Sprint(rt.Admin().Users()); got != want {
		t.Fatalf("users = %s, want %s", got, want)
	}
	// SIGHUP: load the same sources again and reload.
	next, err := LoadConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rt.Admin().Users()); got != want {
		t.Errorf("users after reload = %s, want %s (the answer to DEL must hold)", got, want)
	}
	if _, ok := rt.Admin().Login("root", "secret"); !ok {
		t.Error("the -u user lost its password")
	}
}

// The last ADMIN is refused as the last ADMIN (PCTP's own reply), even
// when it was given with -u.
func TestLastAdminFromFlag(t *testing.T) {
	cfg, err := LoadConfig(LoadOptions{File: writeFile(t, "chain:\n  - use: test.auth\n"), Users: []string{"root:secret"}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().DeleteUser("root"); !errors.Is(err, middleware.ErrLastAdmin) || errors.Is(err, ErrUserFromFlag) {
		t.Fatalf("DeleteUser of the last admin, given with -u = %v, want ErrLastAdmin", err)
	}
}
