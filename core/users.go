package core

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
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
	// dummy is a bcrypt hash of a random password at BcryptCost, made on
	// first use: a failed check with no hash of its own compares with it.
	dummy func() []byte
	// compare is bcrypt.CompareHashAndPassword; tests count calls.
	compare func(hash, password []byte) error
	// slots bounds the bcrypt comparisons running at once to half the
	// CPUs, so a flood of wrong passwords from many addresses queues
	// behind them instead of starving the relay (checks by digest do not
	// wait).
	slots chan struct{}
}

type verifiedMAC struct {
	hash string // the bcrypt hash it was verified against
	mac  [sha256.Size]byte
}

func newUsers() *Users {
	s := &userSecret{compare: bcrypt.CompareHashAndPassword, slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
	if _, err := rand.Read(s.key[:]); err != nil {
		panic("core: no randomness for the user table key: " + err.Error())
	}
	s.dummy = sync.OnceValue(func() []byte {
		h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), BcryptCost)
		if err != nil {
			panic("core: cannot make the dummy bcrypt hash: " + err.Error())
		}
		return h
	})
	return &Users{m: map[string]userEntry{}, secret: s}
}

var _ middleware.Credentials = (*Users)(nil)

// mac is the keyed digest of a password: SHA-256 over the secret key and
// the password, in a stack buffer (no allocation on the handshake path).
// The key is random per process and never leaves it, and digests are only
// compared with each other, so length extension does not matter here.
// Callers pass passwords of at most MaxCredential octets.
func (u *Users) mac(password string) [sha256.Size]byte {
	var buf [32 + middleware.MaxCredential]byte
	n := copy(buf[:], u.secret.key[:])
	n += copy(buf[n:], password)
	return sha256.Sum256(buf[:n])
}

// Verify checks a password and returns the user's role.
//
// A right password whose digest is known (users added at run time or
// given in plaintext, and hashed users once they have logged in) is
// checked in constant time without bcrypt. Every other check costs exactly
// one bcrypt comparison at the user's hash, or at a dummy hash for an
// unknown user or a user without a hash, so a wrong password takes as long
// whether or not the user exists. Before that comparison Verify calls
// spend (when not nil); if spend returns false the check fails without
// bcrypt. The password is never kept.
func (u *Users) Verify(name, password string, spend func() bool) (middleware.Role, bool) {
	if !middleware.ValidCredentialLength(password) {
		return 0, false // no user has such a password; RFC 1929 cannot carry one
	}
	e, known := u.m[name]
	mac := u.mac(password)
	if known {
		want, ok := e.mac, e.hasMAC
		if !ok {
			if v, found := u.secret.verified.Load(name); found {
				if vm := v.(verifiedMAC); vm.hash == string(e.hash) {
					want, ok = vm.mac, true
				}
			}
		}
		if ok && subtle.ConstantTimeCompare(mac[:], want[:]) == 1 {
			return e.role, true
		}
	}
	if spend != nil && !spend() {
		return 0, false
	}
	hash := e.hash
	if !known || hash == nil {
		hash = u.secret.dummy()
	}
	u.secret.slots <- struct{}{}
	err := u.secret.compare(hash, bcryptInput(password))
	<-u.secret.slots
	if !known || e.hasMAC || err != nil {
		// A user with a digest has a wrong password here whatever bcrypt
		// said: the comparison only made the failure cost the same.
		return 0, false
	}
	u.secret.verified.Store(name, verifiedMAC{hash: string(e.hash), mac: mac})
	return e.role, true
}

// liveUsers is the user table as stages see it (Params.Users): each call
// reads the live snapshot's table, so a check on a connection accepted
// before a change of users (a deletion, DEL then ADD with a new password)
// sees the change. draft stands in before the first snapshot is stored.
type liveUsers struct {
	rt    *Runtime
	draft *Users
}

var (
	_ middleware.Credentials = liveUsers{}
	_ middleware.UserLookup  = liveUsers{}
)

func (l liveUsers) table() *Users {
	if s := l.rt.snap.Load(); s != nil {
		return s.Users
	}
	return l.draft
}

// Verify implements middleware.Credentials against the live table.
func (l liveUsers) Verify(name, password string, spend func() bool) (middleware.Role, bool) {
	return l.table().Verify(name, password, spend)
}

// Len implements middleware.Credentials: the live table's size.
func (l liveUsers) Len() int { return l.table().Len() }

// Has implements middleware.UserLookup against the live table.
func (l liveUsers) Has(name string) bool {
	_, ok := l.table().m[name]
	return ok
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
	hash, err := bcrypt.GenerateFromPassword(bcryptInput(password), BcryptCost)
	if err != nil {
		return fmt.Errorf("%w: user %q: %w", ErrBadUser, name, err)
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

// validCredential applies the one rule for user names and passwords
// (middleware.CheckUserName, CheckPassword). The error wraps ErrBadUser
// and the rule's sentinel, and names the user but never the password.
func validCredential(name, password string) error {
	if err := middleware.CheckUserName(name); err != nil {
		if errors.Is(err, middleware.ErrCredentialLength) {
			return fmt.Errorf("%w: user name of %d octets: %w", ErrBadUser, len(name), err)
		}
		return fmt.Errorf("%w: %w", ErrBadUser, err)
	}
	if err := middleware.CheckPassword(password); err != nil {
		return fmt.Errorf("%w: user %q: password of %d octets: %w", ErrBadUser, name, len(password), err)
	}
	return nil
}

// bcryptInput is what bcrypt hashes for a password. bcrypt reads at most
// 72 octets, so a longer password (73–255 octets) is first reduced to the
// base64 of its SHA-256 digest (44 octets): every octet counts, and
// passwords of up to 72 octets are hashed as they are, as other tools
// (htpasswd, socks5d before 1.x) hash them.
func bcryptInput(password string) []byte {
	if len(password) <= maxBcryptInput {
		return []byte(password)
	}
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// maxBcryptInput is the longest password bcrypt reads whole.
const maxBcryptInput = 72

// IsBcryptHash reports whether a configured password is a bcrypt hash
// ($2a$, $2b$ or $2y$) rather than plaintext.
func IsBcryptHash(s string) bool {
	if len(s) != 60 || !(strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")) {
		return false
	}
	_, err := bcrypt.Cost([]byte(s))
	return err == nil
}

// HashPassword returns a bcrypt hash for the configuration file, of the
// password itself when it has at most 72 octets and of its pre-hash
// (bcryptInput) when longer, as the server checks it.
func HashPassword(password string) (string, error) {
	if err := middleware.CheckPassword(password); err != nil {
		return "", fmt.Errorf("password of %d octets: %w", len(password), err)
	}
	h, err := bcrypt.GenerateFromPassword(bcryptInput(password), BcryptCost)
	return string(h), err
}
