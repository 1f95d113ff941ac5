package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/socks5d/socks5d/middleware"
)

// countBcrypt makes u count its bcrypt comparisons. Those with a hash at
// BcryptCost (the dummy's, a user's added at run time), which can only
// fail in these tests, fail without the work, to keep the race detector's
// runs short.
func countBcrypt(u *Users) *atomic.Int64 {
	n := new(atomic.Int64)
	compare := u.secret.compare
	u.secret.compare = func(hash, password []byte) error {
		n.Add(1)
		if cost, err := bcrypt.Cost(hash); err == nil && cost == BcryptCost {
			return bcrypt.ErrMismatchedHashAndPassword
		}
		return compare(hash, password)
	}
	return n
}

// A wrong password costs one bcrypt comparison whatever the user: unknown,
// added at run time, plaintext in the config, or a config hash (verified
// before or not), so the time taken does not tell which users exist. A
// right password with a known digest costs none. A refused budget stops
// the comparison.
func TestVerifyCostsOneBcryptPerFailure(t *testing.T) {
	u := newUsers()
	if err := u.setNew("added", "pw-added", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	if err := u.setPlain("plain", "pw-plain", middleware.RoleBasic, true); err != nil {
		t.Fatal(err)
	}
	// A cheap hash keeps the test fast; its cost is the config's business.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-hashed"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.setHashed("hashed", hash, middleware.RoleAdmin, true); err != nil {
		t.Fatal(err)
	}
	n := countBcrypt(u)
	for _, c := range []struct {
		name, user, pass string
		ok               bool
		bcrypts          int64
	}{
		{"unknown user", "nobody", "whatever", false, 1},
		{"run-time user, wrong", "added", "nope", false, 1},
		{"run-time user, right", "added", "pw-added", true, 0},
		{"plaintext user, wrong", "plain", "nope", false, 1},
		{"plaintext user, right", "plain", "pw-plain", true, 0},
		{"hashed user, wrong", "hashed", "nope", false, 1},
		{"hashed user, first right", "hashed", "pw-hashed", true, 1},
		{"hashed user, right again", "hashed", "pw-hashed", true, 0},
		{"hashed user, wrong after", "hashed", "nope", false, 1},
	} {
		before := n.Load()
		_, ok := u.Verify(c.user, c.pass, nil)
		if ok != c.ok || n.Load()-before != c.bcrypts {
			t.Errorf("%s: ok=%v with %d bcrypt comparisons, want ok=%v with %d", c.name, ok, n.Load()-before, c.ok, c.bcrypts)
		}
	}
	// The dummy hash costs what socks5d's own hashes cost.
	if cost, err := bcrypt.Cost(u.secret.dummy()); err != nil || cost != BcryptCost {
		t.Errorf("dummy hash cost %d (%v), want %d", cost, err, BcryptCost)
	}
	// Out of budget: refused without bcrypt, for any user; a right
	// password with a digest does not need the budget.
	spent := 0
	refuse := func() bool { spent++; return false }
	before := n.Load()
	for _, user := range []string{"nobody", "added", "plain"} {
		if _, ok := u.Verify(user, "nope", refuse); ok {
			t.Errorf("%s: accepted", user)
		}
	}
	if _, ok := u.Verify("plain", "pw-plain", refuse); !ok {
		t.Error("right password refused for want of budget")
	}
	if n.Load() != before || spent != 3 {
		t.Errorf("out of budget: %d bcrypt comparisons, budget asked %d times; want 0 and 3", n.Load()-before, spent)
	}
}

// Passwords of 73–255 octets can be added, hashed for the config file and
// checked, every octet counting; hashes of short passwords made by plain
// bcrypt stay valid.
func TestLongPasswords(t *testing.T) {
	long := strings.Repeat("a", 72)
	for _, pass := range []string{long + "1"} { // 255 octets: cmd/socks5d's TestHashLongPassword
		u := newUsers()
		if err := u.setNew("carol", pass, middleware.RoleBasic); err != nil {
			t.Fatalf("%d octets: %v", len(pass), err)
		}
		if _, ok := u.Verify("carol", pass, nil); !ok {
			t.Fatalf("%d octets: added password refused", len(pass))
		}
		hash, err := HashPassword(pass)
		if err != nil {
			t.Fatalf("%d octets: hash: %v", len(pass), err)
		}
		if err := u.setHashed("dave", []byte(hash), middleware.RoleBasic, true); err != nil {
			t.Fatal(err)
		}
		// Through bcrypt (no digest yet): the sibling sharing the first
		// 72 octets is refused, the password itself accepted.
		if _, ok := u.Verify("dave", long+"2", nil); ok {
			t.Fatalf("%d octets: a password sharing the first 72 octets was accepted", len(pass))
		}
		if _, ok := u.Verify("dave", pass, nil); !ok {
			t.Fatalf("%d octets: hashed password refused", len(pass))
		}
		// What bcrypt hashes is the documented pre-hash.
		sum := sha256.Sum256([]byte(pass))
		if got := string(bcryptInput(pass)); got != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Fatalf("%d octets: bcrypt input %q is not base64(SHA-256(password))", len(pass), got)
		}
	}
	// A hash of a 72-octet password made by bcrypt itself still works.
	old, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	u := newUsers()
	if err := u.setHashed("erin", old, middleware.RoleBasic, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Verify("erin", long, nil); !ok {
		t.Fatal("bcrypt hash of a 72-octet password refused")
	}
	if _, err := HashPassword(long + strings.Repeat("c", 184)); !errors.Is(err, middleware.ErrCredentialLength) {
		t.Fatalf("256 octets hashed: %v", err)
	}
}

// A name the state file (JSON) or a LIST line cannot hold exactly is
// refused, by ADD and by the configuration alike, with the reason.
func TestUserNameRules(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"caf\xe9", "\xff\xfe", "a\tb", "a\nb", "a\x00", "a\x7f", "a\u0085b", "a\u009bb"} {
		err := rt.Admin().AddUser(name, "pw", middleware.RoleBasic)
		if !errors.Is(err, ErrBadUser) || !errors.Is(err, middleware.ErrUserNameText) {
			t.Errorf("ADD %q: %v", name, err)
		}
		cfg := testConfig(stage("test.auth"))
		cfg.Users = append(cfg.Users, UserConfig{Name: name, Password: "pw", Role: "basic"})
		if _, err := NewRuntime(cfg, nil); !errors.Is(err, middleware.ErrUserNameText) {
			t.Errorf("runtime with config user %q: %v", name, err)
		}
		_, err = LoadConfig(LoadOptions{Users: []string{name + ":pw"}})
		if !errors.Is(err, ErrConfig) || !errors.Is(err, middleware.ErrUserNameText) {
			t.Errorf("-u %q: %v", name, err)
		}
	}
	// The configuration file names the entry at fault (YAML escapes
	// carry the control characters; YAML itself refuses invalid UTF-8).
	for _, name := range []string{`a\tb`, `a\u0085b`} {
		file := filepath.Join(t.TempDir(), "proxy.yaml")
		yaml := "users:\n  - {name: admin, password: pw, role: admin}\n  - {name: \"" + name + "\", password: pw, role: basic}\n"
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(LoadOptions{File: file})
		if !errors.Is(err, ErrConfig) || !errors.Is(err, middleware.ErrUserNameText) || !strings.Contains(err.Error(), "users[1]") {
			t.Errorf("config file user %s: %v", name, err)
		}
	}
	for _, name := range []string{"名前 with space", strings.Repeat("é", 127)} {
		if err := rt.Admin().AddUser(name, "pw", middleware.RoleBasic); err != nil {
			t.Errorf("ADD %q: %v", name, err)
		}
	}
	if err := rt.Admin().AddUser(strings.Repeat("é", 128), "pw", middleware.RoleBasic); !errors.Is(err, middleware.ErrCredentialLength) {
		t.Errorf("256-octet name: %v", err)
	}
}

// A password change (DEL then ADD) applies at once, also to connections
// accepted before it that have not yet sent their credentials: they are
// checked against the live table, not the one they started with.
func TestPasswordChangeAppliesToOpenConnections(t *testing.T) {
	// bcrypt under the race detector is slow: leave the handshakes time
	// for the change (DEL then ADD hashes the new password).
	cfg := testConfig(defaultTestChain()...)
	cfg.SOCKS.HandshakeTimeout = time.Minute
	rt, addr := startProxy(t, cfg)
	if err := rt.Admin().AddUser("carol", "old-password", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	// Two connections accepted and past method selection before the change.
	early := [2]net.Conn{rawConn(t, addr), rawConn(t, addr)}
	for _, c := range early {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		_, _ = c.Write(appendGreeting(nil, 2))
		if got := readN(t, c, 2); !bytes.Equal(got, []byte{5, 2}) {
			t.Fatalf("method selection = %v", got)
		}
	}
	if err := rt.Admin().DeleteUser("carol"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().AddUser("carol", "new-password", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	_, _ = early[0].Write(appendCredentials(nil, "carol", "old-password"))
	if got := readN(t, early[0], 2); !bytes.Equal(got, []byte{1, 1}) {
		t.Errorf("old password on an early connection: answer %v, want refused [1 1]", got)
	}
	_, _ = early[1].Write(appendCredentials(nil, "carol", "new-password"))
	if got := readN(t, early[1], 2); !bytes.Equal(got, []byte{1, 0}) {
		t.Errorf("new password on an early connection: answer %v, want accepted [1 0]", got)
	}
}

// BenchmarkVerifyWrongPassword: a wrong password costs about the same for
// an unknown user as for any known one (one bcrypt comparison at
// BcryptCost); a right password with a digest costs microseconds.
func BenchmarkVerifyWrongPassword(b *testing.B) {
	u := newUsers()
	if err := u.setNew("added", "pw-added", middleware.RoleBasic); err != nil {
		b.Fatal(err)
	}
	hash, err := HashPassword("pw-hashed")
	if err != nil {
		b.Fatal(err)
	}
	if err := u.setHashed("hashed", []byte(hash), middleware.RoleBasic, true); err != nil {
		b.Fatal(err)
	}
	u.Verify("nobody", "warm-up", nil) // makes the dummy hash
	for _, c := range []struct{ name, user, pass string }{
		{"unknown", "nobody", "guess"},
		{"added", "added", "guess"},
		{"hashed", "hashed", "guess"},
		{"right-with-digest", "added", "pw-added"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				u.Verify(c.user, c.pass, nil)
			}
		})
	}
}
