package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// maxCached bounds the users whose remote result is cached.
const maxCached = 10000

// cache remembers, for a configured time, that a remote backend accepted a
// user's password. It keeps a keyed hash of the password (HMAC-SHA-256
// with a random key made at start-up and never written anywhere), never
// the password; a lookup compares in constant time. Only accepted
// passwords are cached: a wrong password is always asked again, within
// the client's budget of checks. It lives in the shared pool and
// synchronises itself.
type cache struct {
	now  func() time.Time // the clock; tests replace it before use
	key  [32]byte
	hits atomic.Int64 // checks answered from the cache

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	mac     [32]byte
	role    middleware.Role
	backend string // which remote answered (a lookup only counts for it)
	expires time.Time
}

func newCache() *cache {
	c := &cache{now: time.Now, m: map[string]cached{}}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("auth: no randomness for the cache key: " + err.Error())
	}
	return c
}

func (c *cache) mac(user, password string) [32]byte {
	h := hmac.New(sha256.New, c.key[:])
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// get returns the cached role of user when password is the one cached
// and the entry has not expired.
func (c *cache) get(user, password string) (role middleware.Role, backend string, ok bool) {
	mac := c.mac(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.m[user]
	if !found {
		return 0, "", false
	}
	if !c.now().Before(e.expires) {
		delete(c.m, user)
		return 0, "", false
	}
	if subtle.ConstantTimeCompare(mac[:], e.mac[:]) != 1 {
		return 0, "", false
	}
	c.hits.Add(1)
	return e.role, e.backend, true
}

// put caches an accepted password for ttl.
func (c *cache) put(user, password string, role middleware.Role, backend string, ttl time.Duration) {
	mac := c.mac(user, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, found := c.m[user]; !found && len(c.m) >= maxCached {
		c.evict(now)
	}
	c.m[user] = cached{mac: mac, role: role, backend: backend, expires: now.Add(ttl)}
}

// evict removes expired entries, or else the one closest to expiry.
// Called with the lock held.
func (c *cache) evict(now time.Time) {
	var oldest string
	var at time.Time
	for u, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, u)
			continue
		}
		if oldest == "" || e.expires.Before(at) {
			oldest, at = u, e.expires
		}
	}
	if len(c.m) >= maxCached {
		delete(c.m, oldest)
	}
}

// len is the number of entries, expired ones included until next looked at.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
