// Package core is socks5d's engine: it loads the configuration, holds the
// live configuration as an immutable Snapshot behind Runtime, speaks SOCKS5
// on the wire, and runs every connection through the chain of stages that
// the middleware package defines. It imports middleware and nothing else of
// socks5d; cmd wires it to builtin's stages and to PCTP, which reaches it
// through its own Admin interface (core.Admin, got with Runtime.Admin,
// satisfies it).
//
// The files, by concern:
//
// Configuration
//   - config.go: Config and LoadConfig (defaults, file, environment, flags),
//     validation of the listeners and the users.
//   - config_decode.go: strict decoding into Config (every key known, no
//     value converted by guess) and KeyError.
//   - engine_settings.go: the socks.* durations' ranges, and the engine
//     settings CONFIG lists and changes.
//   - warnings.go: what start-up tells the operator (StartupWarnings).
//   - listeners.go: the listeners section and the chains of front doors;
//     store_config.go: the store section; instance.go: instance_name.
//
// The live configuration
//   - runtime.go: Runtime, Snapshot and Draft; Update compiles a draft and
//     installs it (stages activated and cleaned up: middleware.Activator,
//     Cleaner); Reload; STATS keys checked for clashes.
//   - persist.go, state.go, store.go: what administrators change, kept by
//     a Store (FileStore) and laid over the configuration (UseStore,
//     ReopenFiles, Close); counters.go: counts kept across restarts
//     (FileCounters).
//   - fleet.go: instances sharing one store (FollowStore, ApplyState,
//     Revision, SetBanBoard).
//   - lists.go: list settings edited item by item (RULES).
//   - users.go: the user table (bcrypt hashes, constant-time checks).
//   - datadir*.go: the data directory, checked and made at start-up.
//
// Administration
//   - admin.go: Admin, the administrators' view of a Runtime that PCTP
//     drives (Runtime.Admin): login, STATS, RECORDS, settings and SET,
//     users. Its methods of one concern stay in that concern's file:
//     Sessions and Kill (sessions.go), KillUser (fleet.go), Items,
//     InsertItem and DeleteItem (lists.go), Purpose (purpose.go), Quotas
//     and ResetQuota (quota.go).
//
// Serving connections (Runtime's ServeSOCKS, ServeListener, Shutdown,
// Protect and Ready)
//   - server.go: the accept loop (ServeSOCKS), Shutdown and its drain.
//   - frontdoor.go: the listeners' front doors (ServeListener): TLS, then
//     the protocol told from the first byte; peek_*.go reads that byte;
//     proxyproto.go: the PROXY protocol header from a trusted balancer;
//     tlscert.go: certificates reloaded on SIGHUP (CertStore).
//   - httpproxy.go: HTTP CONNECT and plain HTTP proxying, the terminal
//     handler's other protocol.
//   - sessions.go: the table of open sessions (SESSIONS, KILL).
//   - health.go, readiness_*.go: readiness for load balancers.
//   - terminal.go: the handler at the end of the chain: handshake,
//     request, dial, reply, relay, and the facts it records on the
//     Session; connlogger.go gives its log lines the connection's fields.
//   - handshake.go: the buffered reader of greeting, authentication and
//     request; socks5.go: the SOCKS5 wire codec (RFC 1928, RFC 1929).
//   - relay.go: the TCP relay (splice when no stage wrapped a conn, pooled
//     buffers otherwise).
//   - policy.go: destination policies asked for BIND and UDP ASSOCIATE.
//   - protect*.go: the server's own listeners, which clients may not dial.
//   - bind.go: BIND.
//   - UDP ASSOCIATE: udp.go (the association: sockets, read loops, name
//     cache), udp_config.go (socks.udp), udp_header.go (the datagram
//     header codec), udp_stats.go (association limits and the BIND and
//     UDP counters in STATS), udp_linux.go and udp_other.go (waiting
//     until a socket is readable, before taking a buffer).
//
// errors.go holds the package's sentinel errors.
package core
