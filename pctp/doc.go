// Package pctp implements PCTP, the proxy's administration protocol (see
// docs/PCTP.md): a line-based text protocol over TCP, modelled on POP3, used to
// watch the proxy (STATS, LOGS) and to change it while it runs (users, IO
// buffer size, middleware settings).
//
// The Server reaches the proxy only through the Admin interface, which
// core.Admin (a core.Runtime's administrators' view) satisfies. Every command is an entry of one registry that
// records its keyword, the session phases in which it is valid, the shape of
// its argument, its one-line help and its handler; the dispatcher enforces
// phase, argument shape and line length, HELP is generated from the registry,
// and the Client learns from the same registry which replies are multi-line.
//
// A session:
//
//	C: USER admin
//	S: +OK Please send password
//	C: PASS password
//	S: +OK Successfully logged in
//	C: STATS
//	S: +OK Sending stats...
//	S: current_connections: 12
//	S: total_connections: 148
//	S: current_bytes_proxied: 1234
//	S: total_bytes_proxied: 409600
//	S:
//	C: CONFIG IO=8000
//	S: +OK Setting IO buffers size
//	C: EXIT
//	S: +OK Done
package pctp
