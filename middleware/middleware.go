// Package middleware is the public kit for writing a socks5d stage.
//
// Every SOCKS connection flows through an ordered chain of stages. A stage is
// a Middleware: Wrap(next) returns a Handler that does its work around the
// call to next. The chain ends in the engine's terminal handler, which speaks
// SOCKS (handshake, request, dial, reply, relay); a stage never parses wire
// bytes.
//
// One rule for every stage: configure before next, observe after next.
// Before calling next a stage installs what it contributes on the Session
// (an Authenticator, a wrapped client conn, a wrapped Dialer, the IO size).
// After next returns, failures included, it reads the Session's final facts
// (user, target, reply code, bytes, duration) to count or log them.
//
// A stage registers itself from its package's init function with Register,
// and is placed in the chain by naming its type in the `chain:` list of the
// configuration file. Optional interfaces plug a stage into the rest of the
// server (Tunable, StatsSource, ...), and Activator and Cleaner give it a
// lifecycle (lifecycle.go). See the package example for a complete custom
// stage.
package middleware

import "context"

// Handler serves one SOCKS connection. ServeConn returns when the connection
// is over; the error, if any, says why it ended early.
type Handler interface {
	ServeConn(ctx context.Context, s *Session) error
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, s *Session) error

// ServeConn calls f(ctx, s).
func (f HandlerFunc) ServeConn(ctx context.Context, s *Session) error { return f(ctx, s) }

// Middleware is one stage of the chain. Wrap is called once each time the
// chain is compiled; next is never nil. Wrap must not start goroutines or
// mutate shared state: the stage value is immutable after New returns.
type Middleware interface {
	Wrap(next Handler) Handler
}

// MiddlewareFunc adapts a function to the Middleware interface.
type MiddlewareFunc func(next Handler) Handler

// Wrap calls f(next).
func (f MiddlewareFunc) Wrap(next Handler) Handler { return f(next) }
