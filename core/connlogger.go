package core

import (
	"net/netip"

	"github.com/hashicorp/go-hclog"
)

// connLogger is a connection's logger: the shared "socks" logger plus the
// connection's id and client, added only when a line is actually written.
// hclog's With would copy the logger and format the fields for every
// connection, logged or not; this costs nothing until something is logged.
type connLogger struct {
	hclog.Logger
	id     uint64
	client netip.AddrPort
	via    netip.AddrPort // the load balancer, when client came from a PROXY header
	// listener names a listener other than the `socks:` one ("" for it,
	// so its lines stay as they were).
	listener string
}

var _ hclog.Logger = (*connLogger)(nil)

func (l *connLogger) fields(args []any) []any {
	head := []any{"conn", l.id, "client", l.client.String()}
	if l.via.IsValid() {
		head = append(head, "via", l.via.String())
	}
	if l.listener != "" {
		head = append(head, "listener", l.listener)
	}
	return append(head, args...)
}

// Log writes a line at level with the connection's fields.
func (l *connLogger) Log(level hclog.Level, msg string, args ...any) {
	if l.Logger.GetLevel() <= level {
		l.Logger.Log(level, msg, l.fields(args)...)
	}
}

// Trace writes a line at TRACE level with the connection's fields.
func (l *connLogger) Trace(msg string, args ...any) {
	if l.IsTrace() {
		l.Logger.Trace(msg, l.fields(args)...)
	}
}

// Debug writes a line at DEBUG level with the connection's fields.
func (l *connLogger) Debug(msg string, args ...any) {
	if l.IsDebug() {
		l.Logger.Debug(msg, l.fields(args)...)
	}
}

// Info writes a line at INFO level with the connection's fields.
func (l *connLogger) Info(msg string, args ...any) {
	if l.IsInfo() {
		l.Logger.Info(msg, l.fields(args)...)
	}
}

// Warn writes a line at WARN level with the connection's fields.
func (l *connLogger) Warn(msg string, args ...any) {
	if l.IsWarn() {
		l.Logger.Warn(msg, l.fields(args)...)
	}
}

// Error writes a line at ERROR level with the connection's fields.
func (l *connLogger) Error(msg string, args ...any) {
	if l.IsError() {
		l.Logger.Error(msg, l.fields(args)...)
	}
}

// ImpliedArgs returns the connection's fields.
func (l *connLogger) ImpliedArgs() []any { return l.fields(l.Logger.ImpliedArgs()) }

// With returns a logger with the connection's fields and args.
func (l *connLogger) With(args ...any) hclog.Logger { return l.Logger.With(l.fields(args)...) }

// Named returns a sub-logger that keeps the connection's fields.
func (l *connLogger) Named(name string) hclog.Logger {
	return &connLogger{Logger: l.Logger.Named(name), id: l.id, client: l.client}
}

// ResetNamed returns a renamed logger that keeps the connection's fields.
func (l *connLogger) ResetNamed(name string) hclog.Logger {
	return &connLogger{Logger: l.Logger.ResetNamed(name), id: l.id, client: l.client}
}
