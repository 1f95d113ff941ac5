package connlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// TimeFormat is the time field of a JSON line: RFC 3339 in UTC, to the
// millisecond.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// errCorrupt is wrapped when a line of the log cannot be read back.
var errCorrupt = errors.New("connlog: corrupt line")

// jsonLine is one record as a line of the file. The first fields are the
// LOGS line's, in its order.
type jsonLine struct {
	Time       string  `json:"time"`
	User       string  `json:"user"`
	ClientIP   string  `json:"client_ip"`
	ClientPort uint16  `json:"client_port"`
	Host       string  `json:"host"`
	Port       uint16  `json:"port"`
	Reply      *uint8  `json:"reply"` // null: no reply was sent
	Bytes      int64   `json:"bytes"`
	Auth       string  `json:"auth"`
	ID         uint64  `json:"id"`
	Command    string  `json:"command"`
	Up         int64   `json:"up"`
	Down       int64   `json:"down"`
	Duration   float64 `json:"duration"` // seconds
	Reason     string  `json:"reason"`
	// ViaIP and ViaPort are the load balancer the connection came
	// through when the client's address came from a PROXY protocol
	// header; absent otherwise.
	ViaIP    string `json:"via_ip,omitempty"`
	ViaPort  uint16 `json:"via_port,omitempty"`
	Listener string `json:"listener,omitempty"`
	// Egress is which way the connection left (the forward stage's
	// choice); absent when no egress stage said.
	Egress string `json:"egress,omitempty"`
}

// lineOf returns the line of a record.
func lineOf(r *middleware.Record) jsonLine {
	l := jsonLine{
		Time:     r.Time.UTC().Format(TimeFormat),
		User:     r.User,
		Host:     r.Target.Host(),
		Port:     r.Target.Port,
		Bytes:    r.Bytes,
		Auth:     r.AuthState.String(),
		ID:       r.ID,
		Command:  r.Command.String(),
		Up:       r.Up,
		Down:     r.Down,
		Duration: math.Round(r.Duration.Seconds()*1e6) / 1e6,
		Reason:   r.Reason,
		Egress:   r.Egress,
		Listener: r.Listener,
	}
	if r.Client.IsValid() {
		l.ClientIP = r.Client.Addr().Unmap().String()
		l.ClientPort = r.Client.Port()
	}
	if r.Via.IsValid() {
		l.ViaIP = r.Via.Addr().Unmap().String()
		l.ViaPort = r.Via.Port()
	}
	if r.ReplySent {
		code := uint8(r.Reply)
		l.Reply = &code
	}
	return l
}

// parseLine reads a line of the file back into a record. Fields it does
// not know are ignored; a line that is not a JSON object, or whose time
// or addresses do not parse, is an error wrapping errCorrupt.
func parseLine(b []byte) (middleware.Record, error) {
	var l jsonLine
	if err := json.Unmarshal(b, &l); err != nil {
		return middleware.Record{}, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	t, err := time.Parse(time.RFC3339, l.Time)
	if err != nil {
		return middleware.Record{}, fmt.Errorf("%w: time: %w", errCorrupt, err)
	}
	r := middleware.Record{
		ID:        l.ID,
		Time:      t.UTC(),
		User:      l.User,
		Bytes:     l.Bytes,
		Up:        l.Up,
		Down:      l.Down,
		AuthState: parseAuth(l.Auth),
		Command:   parseCommand(l.Command),
		Duration:  time.Duration(math.Round(l.Duration*1e6)) * time.Microsecond,
		Reason:    l.Reason,
		Egress:    l.Egress,
		Listener:  l.Listener,
		Target:    middleware.Target{Port: l.Port},
	}
	if l.ClientIP != "" {
		a, err := netip.ParseAddr(l.ClientIP)
		if err != nil {
			return middleware.Record{}, fmt.Errorf("%w: client_ip: %w", errCorrupt, err)
		}
		r.Client = netip.AddrPortFrom(a, l.ClientPort)
	}
	if l.ViaIP != "" {
		a, err := netip.ParseAddr(l.ViaIP)
		if err != nil {
			return middleware.Record{}, fmt.Errorf("%w: via_ip: %v", errCorrupt, err)
		}
		r.Via = netip.AddrPortFrom(a, l.ViaPort)
	}
	if a, err := netip.ParseAddr(l.Host); err == nil {
		r.Target.Addr = a
	} else {
		r.Target.Name = l.Host
	}
	if l.Reply != nil {
		r.Reply, r.ReplySent = middleware.Reply(*l.Reply), true
	}
	return r, nil
}

func parseAuth(s string) middleware.AuthState {
	for _, a := range [...]middleware.AuthState{middleware.AuthNoAuth, middleware.AuthOK, middleware.AuthFailed} {
		if s == a.String() {
			return a
		}
	}
	return middleware.AuthNone
}

func parseCommand(s string) middleware.Command {
	for _, c := range [...]middleware.Command{middleware.CmdConnect, middleware.CmdBind, middleware.CmdUDPAssociate} {
		if s == c.String() {
			return c
		}
	}
	if hex, ok := strings.CutPrefix(s, "0x"); ok {
		if n, err := strconv.ParseUint(hex, 16, 8); err == nil {
			return middleware.Command(n)
		}
	}
	return 0
}
