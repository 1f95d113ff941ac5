package core

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/socks5d/socks5d/middleware"
)

// BcryptCost is the cost of the hashes socks5d makes (ADD over PCTP,
// `socks5d hash`).
const BcryptCost = bcrypt.DefaultCost

// userEntry is one user. The password itself is never kept: a user has a
// bcrypt hash (what is stored at rest), a keyed digest used to check it
// fast, or both.
type userEntry struct {
	role middleware.Role
	// hash is the bcrypt hash, nil for a user whose password came in
	// plaintext from the configuration file and is kept there.
	hash []byte
	// mac is the keyed digest (Users.mac) of the password when it was known at
	// creation; hasMAC says whether it is set.
	mac    [sha256.Size]byte
	hasMAC bool
	// fromConfig marks users defined by the configuration (file or -u),
	// which a reload of the file replaces; users added over PCTP stay.
	fromConfig bool
	// fromFlag marks users given with -u: they outrank the saved state.
	fromFlag bool
}

// Users is an immutable user table. A change builds a new table (see
// Draft); a table in use is never mutated, so readers take no lock.
//
// Checking a bcrypt hash costs tens of milliseconds, too much for every
// SOCKS handshake, so after a hash has verified a password once, a keyed
// digest of that password (a random per-process key, never
// stored) is remembered in a cache shared by every version of the table;
// later checks compare digests in constant time.
type Users struct {
	m      map[string]userEntry
	secret *userSecret
}

// userSecret is shared by all versions of a runtime's user table.
type userSecret struct {
	key      [32]byte
	verified sync.Map // name → verifiedMAC
}

type verifiedMAC struct {
	hash string // the bcrypt hash it was verified against
	mac  [sha256.Size]byte
}

func newUsers() *Users {
	s := &userSecret{}
	if _, err := rand.Read(s.key[:]); err != nil {
		panic("core: no randomness for the user table key: " + err.Error())
	}
	return &Users{m: map[string]userEntry{}, secret: s}
}

var _ middleware.Credentials = (*Users)(nil)

// mac is the keyed digest of a password: SHA-256 over the secret key and
// the password, in a stack buffer (no allocation on the handshake path).
// The key is random per process and never leaves it, and digests are only
// compared with each other, so length extension does not matter here.
func (u *Users) mac(password string) [sha256.Size]byte {
	var buf [32 + 255]byte
	n := copy(buf[:], u.secret.key[:])
	n += copy(buf[n:], password) // validCredential caps passwords at 255
	return sha256.Sum256(buf[:n])
}

// Verify checks a password in constant time and returns the user's role.
// An unknown user costs a digest and a compare, like a known one.
func (u *Users) Verify(name, password string) (middleware.Role, bool) {
	e, ok := u.m[name]
	mac := u.mac(password)
	if !ok {
		subtle.ConstantTimeCompare(mac[:], e.mac[:])
		return 0, false
	}
	if e.hasMAC {
		if subtle.ConstantTimeCompare(mac[:], e.mac[:]) == 1 {
			return e.role, true
		}
		return 0, false
	}
	if v, ok := u.secret.verified.Load(name); ok {
		// This hash has verified a password before: the digest of that
		// password decides, without another bcrypt (a wrong guess must
		// not cost the server tens of milliseconds).
		if vm := v.(verifiedMAC); vm.hash == string(e.hash) {
			if subtle.ConstantTimeCompare(mac[:], vm.mac[:]) == 1 {
				return e.role, true
			}
			return 0, false
		}
	}
	if bcrypt.CompareHashAndPassword(e.hash, []byte(password)) != nil {
		return 0, false
	}
	u.secret.verified.Store(name, verifiedMAC{hash: string(e.hash), mac: mac})
	return e.role, true
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.m) }

// Has reports whether the user exists.
func (u *Users) Has(name string) bool {
	_, ok := u.m[name]
	return ok
}

// List returns the users sorted by name.
func (u *Users) List() []middleware.User {
	out := make([]middleware.User, 0, len(u.m))
	for name, e := range u.m {
		out = append(out, middleware.User{Name: name, Role: e.role})
	}
	slices.SortFunc(out, func(a, b middleware.User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (u *Users) admins() int {
	n := 0
	for _, e := range u.m {
		if e.role == middleware.RoleAdmin {
			n++
		}
	}
	return n
}

// clone returns a mutable copy for a Draft.
func (u *Users) clone() *Users {
	m := make(map[string]userEntry, len(u.m)+1)
	for k, v := range u.m {
		m[k] = v
	}
	return &Users{m: m, secret: u.secret}
}

// setPlain adds or replaces a user whose password is given in plaintext
// by the configuration: only its keyed digest is kept.
func (u *Users) setPlain(name, password string, role middleware.Role, fromConfig bool) error {
	if err := validUser(name, password, role); err != nil {
		return err
	}
	u.m[name] = userEntry{role: role, mac: u.mac(password), hasMAC: true, fromConfig: fromConfig}
	return nil
}

// setHashed adds or replaces a user given by a bcrypt hash.
func (u *Users) setHashed(name string, hash []byte, role middleware.Role, fromConfig bool) error {
	if err := validUser(name, "x", role); err != nil {
		return err
	}
	if _, err := bcrypt.Cost(hash); err != nil {
		return fmt.Errorf("%w: user %q: not a bcrypt hash", ErrBadUser, name)
	}
	u.m[name] = userEntry{role: role, hash: hash, fromConfig: fromConfig}
	return nil
}

// setNew adds or replaces a user created at run time: its password is
// hashed with bcrypt (what is stored at rest) and its digest kept for
// fast checks.
func (u *Users) setNew(name, password string, role middleware.Role) error {
	if err := validUser(name, password, role); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadUser, err)
	}
	u.m[name] = userEntry{role: role, hash: hash, mac: u.mac(password), hasMAC: true}
	return nil
}

// setConfigured applies the configuration's users: each is added or
// replaced, and users that came from an earlier configuration but are no
// longer in it are removed. Users added at run time stay.
func (u *Users) setConfigured(users []UserConfig) error {
	keep := map[string]bool{}
	for i, c := range users {
		role, err := middleware.ParseRole(c.Role)
		if err != nil {
			return fmt.Errorf("%w: users[%d].role: %w", ErrConfig, i, err)
		}
		if IsBcryptHash(c.Password) {
			err = u.setHashed(c.Name, []byte(c.Password), role, true)
		} else {
			err = u.setPlain(c.Name, c.Password, role, true)
		}
		if err != nil {
			return fmt.Errorf("%w: users[%d]: %w", ErrConfig, i, err)
		}
		if c.FromFlag {
			e := u.m[c.Name]
			e.fromFlag = true
			u.m[c.Name] = e
		}
		keep[c.Name] = true
	}
	for name, e := range u.m {
		if e.fromConfig && !keep[name] {
			delete(u.m, name)
		}
	}
	return nil
}

func validUser(name, password string, role middleware.Role) error {
	if err := validCredential(name, password); err != nil {
		return err
	}
	if role != middleware.RoleAdmin && role != middleware.RoleBasic {
		return fmt.Errorf("%w: user %q", middleware.ErrUnknownRole, name)
	}
	return nil
}

func validCredential(name, password string) error {
	if len(name) < 1 || len(name) > 255 || len(password) < 1 || len(password) > 255 {
		return ErrBadUser
	}
	return nil
}

// IsBcryptHash reports whether a configured password is a bcrypt hash
// ($2a$, $2b$ or $2y$) rather than plaintext.
func IsBcryptHash(s string) bool {
	if len(s) != 60 || !(strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")) {
		return false
	}
	_, err := bcrypt.Cost([]byte(s))
	return err == nil
}

// HashPassword returns a bcrypt hash for the configuration file.
func HashPassword(password string) (string, error) {
	if err := validCredential("x", password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
	return string(h), err
}
