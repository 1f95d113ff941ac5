package pctp_test

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/pctp"
)

// fakeAdmin behaves like core.Runtime as PCTP sees it, with fixed
// statistics and records so transcripts are deterministic.
type fakeAdmin struct {
	mu       sync.Mutex
	users    map[string]fakeUser
	settings []middleware.Setting
	logins   int
	rules    []string
	// forward is a second rules list, of a stage named forward.
	forward []string
	// slow makes each Login take that long, as bcrypt does, so that
	// logins overlap.
	slow time.Duration
}

type fakeUser struct {
	password string
	role     middleware.Role
}

var _ pctp.Admin = (*fakeAdmin)(nil)

var (
	errFakeUserExists  = errors.New("core: user exists")
	errFakeNoUser      = errors.New("core: unknown user")
	errFakeBadUser     = errors.New("core: bad user name or password")
	errFakeUnknownSett = errors.New("core: unknown setting")
	errFakeBadValue    = errors.New("middleware: bad value")
	errFakeNoPurpose   = errors.New("core: no stage serves that purpose")
)

// newFakeAdmin has one user, admin/password, as the report's transcripts.
func newFakeAdmin() *fakeAdmin {
	return &fakeAdmin{
		users: map[string]fakeUser{"admin": {"password", middleware.RoleAdmin}},
		rules: []string{"deny dest=127.0.0.0/8 hits=2"},
		settings: []middleware.Setting{
			{Key: "iobuf.size", Value: "4096", Help: "relay buffer size in bytes"},
			{Key: "ratelimit.per_user", Value: "0", Help: "bytes per second per user, 0 for no limit"},
			{Key: "ratelimit.per_conn", Value: "0", Help: "bytes per second per connection, 0 for no limit"},
		},
	}
}

func (f *fakeAdmin) Login(user, password string) (middleware.Role, bool) {
	time.Sleep(f.slow)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	u, ok := f.users[user]
	if subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) != 1 || !ok {
		return 0, false
	}
	return u.role, true
}

// Stats gives the required keys out of order and mixed with others, to
// check that the server puts them first.
func (f *fakeAdmin) Stats() []middleware.Stat {
	return []middleware.Stat{
		{Key: "uptime_seconds", Value: 3600},
		{Key: "total_connections", Value: 148},
		{Key: "failed_auths", Value: 2},
		{Key: "current_connections", Value: 12},
		{Key: "total_bytes_proxied", Value: 409600},
		{Key: "connections_by_reply.0", Value: 140},
		{Key: "current_bytes_proxied", Value: 1234},
		{Key: "connections_by_reply.5", Value: 8},
	}
}

// fakeRecords are newest first; the first three are PCTP.md's example.
var fakeRecords = func() []middleware.Record {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t.In(time.FixedZone("ART", -3*3600)) // LOGS must print UTC
	}
	dst := middleware.Target{Addr: netip.MustParseAddr("34.145.113.24"), Port: 443}
	return []middleware.Record{
		{ID: 6, Time: at("2025-07-13T13:55:03Z"), User: "alice", Client: netip.MustParseAddrPort("127.0.0.1:50514"), Command: middleware.CmdConnect, Target: dst, ReplySent: true, Bytes: 15750, AuthState: middleware.AuthOK},
		{ID: 5, Time: at("2025-07-13T13:54:08Z"), User: "alice", Client: netip.MustParseAddrPort("127.0.0.1:33112"), Command: middleware.CmdConnect, Target: dst, ReplySent: true, Bytes: 15750, AuthState: middleware.AuthOK},
		{ID: 4, Time: at("2025-07-13T13:54:05Z"), User: "alice", Client: netip.MustParseAddrPort("127.0.0.1:33096"), Command: middleware.CmdConnect, Target: dst, ReplySent: true, Bytes: 15750, AuthState: middleware.AuthOK},
		{ID: 3, Time: at("2025-07-13T13:50:00Z"), Client: netip.MustParseAddrPort("[::ffff:10.0.0.7]:40000"), Command: middleware.CmdConnect, Target: middleware.Target{Name: "example.org", Port: 80}, ReplySent: true, Bytes: 1024, AuthState: middleware.AuthNoAuth},
		{ID: 2, Time: at("2025-07-13T13:49:30Z"), User: "bob", Client: netip.MustParseAddrPort("[2001:db8::1]:51000"), Command: middleware.CmdConnect, Target: middleware.Target{Name: "closed.example", Port: 25}, Reply: middleware.ReplyConnectionRefused, ReplySent: true, AuthState: middleware.AuthOK},
		{ID: 1, Time: at("2025-07-13T13:49:00Z"), User: "mallory", Client: netip.MustParseAddrPort("192.0.2.9:1234"), AuthState: middleware.AuthFailed},
	}
}()

func (f *fakeAdmin) Records(n int) []middleware.Record {
	if n <= 0 || n > len(fakeRecords) {
		n = len(fakeRecords)
	}
	return slices.Clone(fakeRecords[:n])
}

func (f *fakeAdmin) Settings() []middleware.Setting {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.settings)
}

// Set validates like the stages do: sizes, and iobuf.size within
// 4096..16777216.
func (f *fakeAdmin) Set(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.settings, func(s middleware.Setting) bool { return s.Key == key })
	if i < 0 {
		return fmt.Errorf("%w %q", errFakeUnknownSett, key)
	}
	size, err := middleware.ParseSize(value)
	if err != nil {
		return err
	}
	if key == "iobuf.size" && (size < 4096 || size > 16<<20) {
		return fmt.Errorf("%w: key \"size\": %d: iobuf: size must be 4096..16777216 bytes", errFakeBadValue, size)
	}
	f.settings[i].Value = size.String()
	return nil
}

func (f *fakeAdmin) Users() []middleware.User {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]middleware.User, 0, len(f.users))
	for name, u := range f.users {
		out = append(out, middleware.User{Name: name, Role: u.role})
	}
	slices.SortFunc(out, func(a, b middleware.User) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (f *fakeAdmin) AddUser(name, password string, role middleware.Role) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "" || len(name) > 255 || password == "" || len(password) > 255 {
		return errFakeBadUser
	}
	if _, ok := f.users[name]; ok {
		return fmt.Errorf("%w: %q", errFakeUserExists, name)
	}
	f.users[name] = fakeUser{password, role}
	return nil
}

func (f *fakeAdmin) DeleteUser(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		return fmt.Errorf("%w: %q", errFakeNoUser, name)
	}
	admins := 0
	for _, v := range f.users {
		if v.role == middleware.RoleAdmin {
			admins++
		}
	}
	if err := middleware.CheckRemoval(u.role, admins); err != nil {
		return err
	}
	delete(f.users, name)
	return nil
}

func (f *fakeAdmin) Sessions() []middleware.SessionInfo {
	start := time.Date(2025, 7, 13, 13, 55, 3, 0, time.UTC)
	return []middleware.SessionInfo{{
		ID: 7, User: "alice", Client: netip.MustParseAddrPort("127.0.0.1:50514"), Command: middleware.CmdConnect,
		Target: middleware.Target{Name: "example.org", Port: 443}, Up: 100, Down: 15650, Start: start, Active: start, Rate: 0,
	}}
}

func (f *fakeAdmin) Kill(id uint64) error {
	if id != 7 {
		return errors.New("no such session")
	}
	return nil
}

func (f *fakeAdmin) KillUser(name string) int {
	if name == "alice" {
		return 1
	}
	return 0
}

func (f *fakeAdmin) UserStats(name string) ([]middleware.Stat, bool) {
	if name != "alice" {
		return nil, false
	}
	return []middleware.Stat{{Key: "connections", Value: 3}, {Key: "bytes_up", Value: 300}}, true
}

// Quotas has alice over a monthly quota and "b ob" (a name to escape)
// under it.
func (f *fakeAdmin) Quotas() ([]middleware.QuotaUsage, bool) {
	resets := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	return []middleware.QuotaUsage{
		{User: "alice", Used: 10737418240, Limit: 10737418240, Period: "month:2025-12", Resets: resets},
		{User: "b ob", Used: 4096, Limit: 10737418240, Period: "month:2025-12", Resets: resets},
	}, true
}

// ResetQuota knows alice's count; "fail" stands for a store that cannot
// save.
func (f *fakeAdmin) ResetQuota(name string) (bool, error) {
	switch name {
	case "alice":
		return true, nil
	case "fail":
		return true, errors.New("quota: state store: counters file data/counters.json: disk full")
	}
	return false, nil
}

// Purpose finds the IO size and the rules lists as core does: the policy
// is filter's list, and the stages filter and forward have rules.
func (f *fakeAdmin) Purpose(p middleware.Purpose, stage string) (string, error) {
	switch {
	case p == middleware.PurposeIOSize && stage == "":
		for _, st := range f.settings {
			if st.Key == "iobuf.size" {
				return st.Key, nil
			}
		}
	case p == middleware.PurposePolicy && stage == "",
		p == middleware.PurposeRules && stage == "filter":
		return "filter.rules", nil
	case p == middleware.PurposeRules && stage == "forward":
		return "forward.rules", nil
	}
	return "", errFakeNoPurpose
}

// list returns the list key; f.mu is held.
func (f *fakeAdmin) list(key string) (*[]string, error) {
	switch key {
	case "filter.rules":
		return &f.rules, nil
	case "forward.rules":
		return &f.forward, nil
	}
	return nil, errors.New("no such list")
}

func (f *fakeAdmin) Items(key string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.list(key)
	if err != nil {
		return nil, err
	}
	return append([]string{}, *l...), nil
}

func (f *fakeAdmin) InsertItem(key string, pos int, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rules, err := f.list(key)
	if err != nil {
		return err
	}
	if key == "filter.rules" && !strings.HasPrefix(text, "allow") && !strings.HasPrefix(text, "deny") {
		return errors.New("a rule starts with allow or deny")
	}
	if pos < 0 || pos > len(*rules)+1 {
		return fmt.Errorf("%w: %s: position %d is out of range 1..%d", errFakeBadValue, key, pos, len(*rules)+1)
	}
	i := pos - 1
	if pos == 0 {
		i = len(*rules)
	}
	*rules = append((*rules)[:i], append([]string{text}, (*rules)[i:]...)...)
	return nil
}

func (f *fakeAdmin) DeleteItem(key string, index int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rules, err := f.list(key)
	if err != nil {
		return err
	}
	if index < 1 || index > len(*rules) {
		return errors.New("no such rule")
	}
	*rules = append((*rules)[:index-1], (*rules)[index:]...)
	return nil
}
