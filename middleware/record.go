package middleware

// Connection records: what a stage keeps for PCTP's LOGS and the
// connection log.

import (
	"net/netip"
	"time"
)

// Record is one finished connection, as PCTP's LOGS and the connection log
// keep it.
type Record struct {
	ID        uint64
	Time      time.Time // when the connection was accepted
	User      string    // "" when there was none
	Client    netip.AddrPort
	Via       netip.AddrPort // the load balancer's, when Client came from a PROXY protocol header
	Command   Command
	Target    Target // as the client asked
	Reply     Reply
	ReplySent bool
	Bytes     int64 // both directions
	AuthState AuthState
	Duration  time.Duration
	// Up and Down split Bytes: client → target and target → client.
	Up, Down int64
	// Reason is a short word for why the connection ended ("ok", "eof",
	// "timeout", ...). The stage that keeps the record sets it from the
	// error next returned; RecordOf leaves it empty.
	Reason string
	// Egress is which way the connection left (Session.Egress), "" when
	// no egress stage said.
	Egress string
	// Listener names the listener that accepted the connection.
	Listener string
}

// RecordOf returns the record of a finished session.
func RecordOf(s *Session) Record {
	up, down := s.Up.Load(), s.Down.Load()
	return Record{
		ID:        s.ID,
		Time:      s.Start,
		User:      s.User,
		Client:    s.Client,
		Via:       s.Via,
		Command:   s.Command,
		Target:    s.Target,
		Reply:     s.Reply,
		ReplySent: s.ReplySent,
		Bytes:     up + down,
		AuthState: s.AuthState,
		Duration:  s.Duration(),
		Up:        up,
		Down:      down,
		Egress:    s.Egress(),
		Listener:  s.Listener,
	}
}

// LogSource is implemented by a stage that keeps connection records (LOGS).
type LogSource interface {
	// Records returns up to n records, newest first; n <= 0 means all.
	Records(n int) []Record
}
