package pctp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Defaults for the Server's zero fields.
const (
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultLoginTimeout bounds a session that has not logged in yet:
	// enough for a person to type a password, short enough that held
	// connections turn over.
	DefaultLoginTimeout = 10 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultMaxSessions  = 100
	// DefaultMaxWaiting and DefaultMaxWaitingPerSource bound the sessions
	// that have not logged in yet.
	DefaultMaxWaiting          = 32
	DefaultMaxWaitingPerSource = 8
)

// Server serves PCTP sessions. Set Admin (required) and any other fields,
// then call Serve. A Server must not be copied after first use, nor serve
// two listeners at once.
type Server struct {
	// Admin is the proxy the sessions administer.
	Admin Admin
	// Logger gets one line per session and per command (keyword and admin
	// user; never a command's argument when it may be a password). Once a
	// session has logged in, each of its lines names the acting
	// administrator as "admin"; what a command acts on has keys of its own
	// ("user" for ADD, DEL and KILL USER, "session", "key", "position").
	// Nil discards.
	Logger hclog.Logger
	// IdleTimeout closes a session that sends no complete line for this
	// long. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// LoginTimeout closes a session still in AUTHORIZATION after this
	// long. Zero means DefaultLoginTimeout.
	LoginTimeout time.Duration
	// WriteTimeout bounds the time to send one reply to a client that does
	// not read. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxSessions is how many logged-in sessions may be open at once; a
	// login beyond it is answered "-ERR Too many sessions" and the session
	// is closed. Sessions that have
	// not logged in yet do not count: they have a pool of their own
	// (MaxWaiting), so they can never keep an administrator out. Zero
	// means DefaultMaxSessions; negative means no limit.
	MaxSessions int
	// MaxWaiting is how many sessions may be open without having logged
	// in. A connection beyond it closes the oldest such session of the
	// client address holding the most of them, so whoever holds many
	// silent connections loses them first. Zero means DefaultMaxWaiting;
	// negative means no limit.
	MaxWaiting int
	// MaxWaitingPerSource is how many sessions one client address (IPv6:
	// one /64) may hold without having logged in; a connection beyond it
	// closes that address's oldest one. Zero means
	// DefaultMaxWaitingPerSource; negative means no limit.
	MaxWaitingPerSource int
	// LoginDelay is how long to wait before checking a login from a
	// source that has failed failures times recently (shared by all of its
	// sessions). Nil means DefaultLoginDelay.
	LoginDelay func(failures int) time.Duration
	// LoginLimits bound the failed logins per source and per user name,
	// across parallel sessions; zero fields take their defaults.
	LoginLimits LoginLimits

	once    sync.Once
	log     hclog.Logger
	sources *budget[netip.Prefix]
	names   *budget[string]
	// failed counts failed logins since the server started, and lockouts
	// the lockouts they caused (STATS).
	failed   atomic.Int64
	lockouts atomic.Int64

	mu       sync.Mutex
	sessions map[*session]struct{} // every open session
	waiting  []*session            // not logged in, oldest first
	perAddr  map[netip.Prefix]int  // waiting sessions per client address
	admins   int                   // logged in
}

func (srv *Server) init() {
	srv.log = srv.Logger
	if srv.log == nil {
		srv.log = hclog.NewNullLogger()
	}
	l := srv.LoginLimits.withDefaults()
	srv.sources = newBudget[netip.Prefix](l.SourceFailures, l.Lockout, l.MaxLockout)
	srv.names = newBudget[string](l.UserFailures, l.Lockout, l.MaxLockout)
	srv.sessions = map[*session]struct{}{}
	srv.perAddr = map[netip.Prefix]int{}
}

// limit turns a zero limit into def and a negative one into none (0).
func limit(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

func (srv *Server) idleTimeout() time.Duration {
	if srv.IdleTimeout > 0 {
		return srv.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (srv *Server) loginTimeout() time.Duration {
	if srv.LoginTimeout > 0 {
		return srv.LoginTimeout
	}
	return DefaultLoginTimeout
}

func (srv *Server) writeTimeout() time.Duration {
	if srv.WriteTimeout > 0 {
		return srv.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (srv *Server) loginDelay(failures int) time.Duration {
	if srv.LoginDelay != nil {
		return srv.LoginDelay(failures)
	}
	return DefaultLoginDelay(failures)
}

// Serve accepts admin sessions on ln, one goroutine each, until ctx is
// cancelled or ln is closed. Before returning it closes ln and every
// session and waits for their goroutines. It returns nil when ctx was
// cancelled, and the accept error (which wraps net.ErrClosed when ln was
// closed) otherwise.
func (srv *Server) Serve(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		return ErrNoListener
	}
	if srv.Admin == nil {
		ln.Close()
		return ErrNoAdmin
	}
	srv.once.Do(srv.init)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes every session (see serveConn)
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()

	srv.log.Info("serving", "addr", ln.Addr().String())
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("pctp: accept: %w", err)
			}
			// Out of descriptors and the like: wait and retry, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.log.Warn("accept failed", "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		s := srv.newSession(conn)
		srv.admit(s)
		wg.Go(func() {
			defer srv.untrack(s)
			srv.serveConn(ctx, s)
		})
	}
}

// admit registers s as waiting for login. When its address already holds
// MaxWaitingPerSource waiting sessions, the oldest of them is closed; else
// when MaxWaiting are waiting, the oldest of the address holding the most
// is (between addresses holding as many, the oldest of all). A new
// connection is never refused: whoever holds the pool loses their oldest
// connections to it.
func (srv *Server) admit(s *session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var victim *session
	if per := limit(srv.MaxWaitingPerSource, DefaultMaxWaitingPerSource); per > 0 && srv.perAddr[s.source] >= per {
		victim = srv.oldestWaiting(s.source)
	} else if all := limit(srv.MaxWaiting, DefaultMaxWaiting); all > 0 && len(srv.waiting) >= all {
		most := 0
		for _, n := range srv.perAddr {
			most = max(most, n)
		}
		for _, w := range srv.waiting { // oldest first
			if srv.perAddr[w.source] == most {
				victim = w
				break
			}
		}
	}
	if victim != nil {
		srv.stopWaiting(victim)
		victim.dropped = true
		victim.conn.Close()
		srv.log.Debug("not logged in, closed to make room for a new connection", "client", victim.conn.RemoteAddr().String())
	}
	srv.sessions[s] = struct{}{}
	srv.waiting = append(srv.waiting, s)
	srv.perAddr[s.source]++
}

// oldestWaiting is the oldest session from source still waiting for
// login. Called with mu held.
func (srv *Server) oldestWaiting(source netip.Prefix) *session {
	for _, w := range srv.waiting {
		if w.source == source {
			return w
		}
	}
	return nil
}

// stopWaiting takes s out of the waiting pool. Called with mu held.
func (srv *Server) stopWaiting(s *session) {
	i := slices.Index(srv.waiting, s)
	if i < 0 {
		return
	}
	srv.waiting = slices.Delete(srv.waiting, i, i+1)
	if srv.perAddr[s.source]--; srv.perAddr[s.source] <= 0 {
		delete(srv.perAddr, s.source)
	}
}

// promote moves s, whose login has just succeeded, from the waiting pool
// to the logged-in one. It reports false when MaxSessions are logged in
// already, or s was closed meanwhile.
func (srv *Server) promote(s *session) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if n := limit(srv.MaxSessions, DefaultMaxSessions); s.dropped || n > 0 && srv.admins >= n {
		return false
	}
	srv.stopWaiting(s)
	s.authed = true
	srv.admins++
	return true
}

func (srv *Server) untrack(s *session) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	delete(srv.sessions, s)
	if s.authed {
		srv.admins--
	} else {
		srv.stopWaiting(s)
	}
}

// EndSessionsOf closes the admin sessions logged in as user, for a user
// removed by other means than DEL (a reload of the configuration file). It
// returns how many it closed.
func (srv *Server) EndSessionsOf(user string) int { return srv.closeSessionsOf(user, nil) }

// closeSessionsOf ends every session logged in as user except keep, after
// the user was deleted, and says how many it ended.
func (srv *Server) closeSessionsOf(user string, keep *session) int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	n := 0
	for s := range srv.sessions {
		if s != keep && s.loggedIn(user) {
			s.conn.Close()
			n++
		}
	}
	return n
}

// session is one admin connection. Its fields belong to its goroutine,
// except admin, which closeSessionsOf reads under mu, and authed and
// dropped, which the Server's mu guards.
type session struct {
	srv    *Server
	conn   net.Conn
	r      *lineReader
	w      *bufio.Writer
	log    hclog.Logger
	client netip.Addr
	source netip.Prefix // the client address, IPv6 by /64 (MaxWaitingPerSource)

	authed  bool // logged in: counted in srv.admins, no longer waiting
	dropped bool // closed by admit to make room

	phase   phase
	user    string // AUTHORIZATION: the name USER gave
	addRole middleware.Role
	addName string
	closing bool // end the session after this reply

	mu    sync.Mutex
	admin string // the logged-in admin, "" before login
}

func (srv *Server) newSession(conn net.Conn) *session {
	var client netip.Addr
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
		client = ap.Addr().Unmap()
	}
	return &session{
		srv:    srv,
		conn:   conn,
		r:      newLineReader(conn, MaxLine),
		w:      bufio.NewWriter(conn),
		log:    srv.log.With("client", conn.RemoteAddr().String()),
		client: client,
		source: middleware.ClientGroup(client),
		phase:  phaseAuth,
	}
}

func (s *session) loggedIn(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin != "" && s.admin == user
}

func (s *session) setAdmin(user string) {
	s.mu.Lock()
	s.admin = user
	s.mu.Unlock()
	// The acting administrator is "admin" in every line this session
	// logs; "user" is kept for the user a command acts on.
	s.log = s.log.With("admin", user)
}

func (s *session) adminName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin
}

// serveConn runs one session until EXIT, an error, the idle timeout or the
// end of ctx.
func (srv *Server) serveConn(ctx context.Context, s *session) {
	defer s.conn.Close()
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	s.log.Debug("session opened")
	defer s.log.Debug("session closed")
	loginBy := time.Now().Add(srv.loginTimeout())
	for {
		deadline := time.Now().Add(srv.idleTimeout())
		if s.phase&phasesAuthorization != 0 && loginBy.Before(deadline) {
			deadline = loginBy
		}
		_ = s.conn.SetReadDeadline(deadline)
		line, tooLong, err := s.r.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.log.Info("session idle, closing")
			}
			return
		}
		// The login deadline bounds the time spent waiting for the client,
		// not the server's own time (a throttled or slow password check),
		// so a legitimate login is not cut off on a loaded host.
		busy := time.Now()
		r := s.dispatch(ctx, line, tooLong)
		if err := s.write(r); err != nil {
			s.log.Debug("write failed", "error", err)
			return
		}
		loginBy = loginBy.Add(time.Since(busy))
		if s.closing {
			return
		}
	}
}

// reply is what a handler answers; the dispatcher writes it.
type reply struct {
	ok    bool
	text  string   // after "+OK " or "-ERR "
	multi bool     // a multi-line reply: lines, then an empty line
	lines []string // data lines (never empty; empty ones are dropped)
}

func ok(text string) reply   { return reply{ok: true, text: text} }
func fail(text string) reply { return reply{text: text} }

func multi(text string, lines []string) reply {
	return reply{ok: true, text: text, multi: true, lines: lines}
}

// dispatch runs one command line. It, not the handlers, enforces the line
// length, the phase and the argument shape.
func (s *session) dispatch(ctx context.Context, raw []byte, tooLong bool) reply {
	inAdd := s.phase&phasesAdd != 0
	r := s.route(ctx, raw, tooLong)
	if inAdd && !r.ok && s.phase&phasesAdd != 0 {
		// Any -ERR in the middle of ADD abandons the addition.
		s.phase, s.addName = phaseMain, ""
		r.text += "; user addition abandoned"
	}
	return r
}

func (s *session) route(ctx context.Context, raw []byte, tooLong bool) reply {
	if tooLong {
		s.log.Debug("line too long")
		return fail(fmt.Sprintf("Line too long (max %d octets)", MaxLine))
	}
	l := parseLine(string(raw))
	c := commands.lookup(l)
	if c == nil {
		s.log.Debug("unknown command")
		return fail("Unknown command")
	}
	kw := c.keywords[0]
	if c.secret || !l.hasArg() {
		s.log.Debug("command", "cmd", kw)
	} else {
		s.log.Debug("command", "cmd", kw, "arg", oneLine(l.arg, 64))
	}
	if c.phases&s.phase == 0 {
		return fail(s.wrongPhase(c))
	}
	switch {
	case c.arg == argNone && l.hasArg():
		return fail(kw + " takes no argument")
	case c.arg == argRequired && !l.hasArg():
		return fail("Missing argument: " + c.usage)
	}
	if l.hasArg() && c.validate != nil {
		if problem := c.validate(l.arg); problem != "" {
			return fail(problem)
		}
	}
	r := c.handle(ctx, s, l.arg)
	if want := c.multiline(l); r.ok && r.multi != want {
		// Clients frame replies by the registry (ExpectsMultiline): the
		// wire must follow it even if a handler gets it wrong.
		s.log.Error("reply shape disagrees with the registry", "cmd", kw)
		r.multi = want
	}
	return r
}

// wrongPhase explains why c is not valid now.
func (s *session) wrongPhase(c *command) string {
	switch {
	case s.phase == phaseAddUser:
		return "Expected USER"
	case s.phase == phaseAddPass:
		return "Expected PASS"
	case s.phase&phasesAuthorization != 0 && c.phases&phasesAuthorization == 0:
		return "Please log in first"
	case s.phase == phaseAuth && c.phases&phaseAuthPass != 0:
		return "Please send USER first"
	case s.phase == phaseMain && c.phases&phasesAuthorization != 0:
		return "Already logged in"
	}
	return "Command not valid now"
}

// write sends r and flushes it.
func (s *session) write(r reply) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.writeTimeout()))
	status := "-ERR"
	if r.ok {
		status = "+OK"
	}
	if r.text != "" {
		status += " " + r.text
	}
	s.w.WriteString(oneLine(status, maxReplyLine))
	s.w.WriteByte('\n')
	if r.ok && r.multi {
		for _, l := range r.lines {
			l = oneLine(l, maxReplyLine)
			if l == "" {
				continue // an empty line would end the reply
			}
			s.w.WriteString(l)
			s.w.WriteByte('\n')
		}
		s.w.WriteByte('\n')
	}
	return s.w.Flush()
}

// sleep waits d, or less if ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
