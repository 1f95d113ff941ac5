package core

import (
	"errors"

	"github.com/socks5d/socks5d/middleware"
)

// Sentinel errors. Wire errors describe what a client sent; the others what
// a configuration or a change asked for.
var (
	// ErrVersion: the client's VER is not 5 (or 1 in RFC 1929).
	ErrVersion = errors.New("core: unsupported SOCKS version")
	// ErrAuthVersion: the RFC 1929 subnegotiation version is not 1.
	ErrAuthVersion = errors.New("core: unsupported authentication version")
	// ErrNoMethods: the greeting offers no method at all.
	ErrNoMethods = errors.New("core: no authentication method offered")
	// ErrNoAcceptableMethod: none of the offered methods is accepted.
	ErrNoAcceptableMethod = errors.New("core: no acceptable authentication method")
	// ErrAddressType: the request's ATYP is unknown.
	ErrAddressType = errors.New("core: address type not supported")
	// ErrEmptyDomain: a domain name of length 0.
	ErrEmptyDomain = errors.New("core: empty domain name")
	// ErrMessageTooLong: a handshake message exceeds the protocol's bounds.
	ErrMessageTooLong = errors.New("core: handshake message too long")
	// ErrAuthFailed: RFC 1929 authentication failed.
	ErrAuthFailed = errors.New("core: authentication failed")
	// ErrUserDeleted: the session's user was deleted while it was open.
	ErrUserDeleted = errors.New("core: user deleted")

	// ErrProxyUntrusted: a PROXY protocol header from a source not in
	// socks.proxy_protocol.trusted.
	ErrProxyUntrusted = errors.New("core: PROXY protocol header from an untrusted source")
	// ErrProxyMissing: a trusted source's connection does not start with
	// a PROXY protocol header.
	ErrProxyMissing = errors.New("core: no PROXY protocol header from a trusted source")
	// ErrProxyInvalid: a malformed, truncated or slow PROXY protocol header.
	ErrProxyInvalid = errors.New("core: invalid PROXY protocol header")

	// ErrBindTimeout: no expected peer connected to a BIND in time.
	ErrBindTimeout = errors.New("core: BIND timed out waiting for the peer")
	// ErrBindNoPeer: a BIND names no peer address (0.0.0.0 or ::).
	ErrBindNoPeer = errors.New("core: BIND needs the expected peer's address")
	// ErrPolicyRefused: a destination policy refused a BIND.
	ErrPolicyRefused = errors.New("core: refused by the destination policy")
	// ErrUDPLimit: over socks.udp.max_associations or socks.udp.per_user.
	ErrUDPLimit = errors.New("core: too many UDP associations")
	// ErrUDPIdle: a UDP association saw no datagram for socks.udp.idle_timeout.
	ErrUDPIdle = errors.New("core: UDP association idle")
	// ErrUDPHeader: a UDP datagram's RFC 1928 header is malformed.
	ErrUDPHeader = errors.New("core: malformed UDP request header")
	// ErrNoRelayAddress: the control connection's local address is not an IP.
	ErrNoRelayAddress = errors.New("core: no local IP to bind the UDP relay on")

	// ErrOwnListener: a client asked to reach one of the server's own
	// listeners (the admin port, say) through the proxy.
	ErrOwnListener = errors.New("core: destination is one of this server's own listeners")
	// ErrKilled: an administrator closed the session.
	ErrKilled = errors.New("core: session killed by an administrator")
	// ErrNoPurpose: no stage in the chain (or not the one named) declares
	// a setting or list for the purpose asked (Admin.Purpose).
	ErrNoPurpose = errors.New("core: no stage serves that purpose")
	// ErrNoSuchSession: KILL names no open session.
	ErrNoSuchSession = errors.New("core: no such session")

	// ErrTLSFiles: a TLS certificate or key cannot be loaded.
	ErrTLSFiles = errors.New("core: TLS certificate or key")
	// ErrFirstByte: a connection's first byte is neither SOCKS nor HTTP
	// (or not what the listener's protocol speaks).
	ErrFirstByte = errors.New("core: first byte is not a protocol this listener speaks")
	// ErrTLSOnPlainPort: a TLS ClientHello arrived on a listener without TLS.
	ErrTLSOnPlainPort = errors.New("core: TLS handshake on a listener without TLS")
	// ErrTLSHandshake: a client's TLS handshake failed.
	ErrTLSHandshake = errors.New("core: TLS handshake failed")
	// ErrHTTPRequest: a malformed HTTP proxy request (answered 400).
	ErrHTTPRequest = errors.New("core: malformed HTTP proxy request")
	// ErrProxyAuth: an HTTP proxy request without valid credentials
	// (answered 407).
	ErrProxyAuth = errors.New("core: proxy authentication required")

	// ErrChainInUse: a change would remove a named chain a running
	// listener serves through.
	ErrChainInUse = errors.New("core: chain in use by a listener")

	// ErrNotReady: the server should not be sent new connections (Ready).
	ErrNotReady = errors.New("core: not ready")

	// ErrState is wrapped by every error about the saved state.
	ErrState = errors.New("core: state")
	// ErrDataDir: the data directory cannot be used safely: it cannot be
	// created or written, or others may write in it.
	ErrDataDir = errors.New("core: unusable data directory")

	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("core: bad configuration")
	// ErrUserExists: adding a user whose name is taken.
	ErrUserExists = errors.New("core: user exists")
	// ErrNoSuchUser: deleting or changing a user that does not exist.
	ErrNoSuchUser = errors.New("core: no such user")
	// ErrUserFromFlag: deleting a user given with -u, which the command
	// line would bring back at the next reload or start.
	ErrUserFromFlag = errors.New("core: user was given with -u on the command line; remove it there")
	// ErrLastAdmin: the change would leave no ADMIN user. It is
	// middleware.ErrLastAdmin, the rule's own (middleware.CheckRemoval).
	ErrLastAdmin = middleware.ErrLastAdmin
	// ErrBadUser: a user that cannot be stored: a name or password outside
	// 1–255 octets, a name that is not valid UTF-8 or holds a control
	// character, a bad hash. It is wrapped beside the precise reason.
	ErrBadUser = errors.New("core: invalid user")
	// ErrUnknownSetting: CONFIG names a key no stage exposes.
	ErrUnknownSetting = errors.New("core: unknown setting")
	// ErrDuplicateStat: two stages of the chain, or a stage and the engine,
	// would print the same STATS key.
	ErrDuplicateStat = errors.New("core: duplicate STATS key")
	// ErrNobodyCanConnect: no users and no stage allows anonymous access.
	ErrNobodyCanConnect = errors.New("core: no users and anonymous access is off: nobody could use the proxy")

	// errShutdown ends the connections still open when a drain runs out.
	errShutdown = errors.New("core: server shutting down")
	// errNoRawRead: the platform has no raw read for the relay (internal).
	errNoRawRead = errors.New("core: no raw read on this platform")
	// errRelayPanic: a relay direction panicked (counted, internal).
	errRelayPanic = errors.New("core: panic in the relay")
	// errShort: the buffer holds only part of a message (internal).
	errShort = errors.New("core: short message")
	// ErrNoQuota is returned by ResetQuota when no stage of the chain
	// keeps traffic quotas.
	ErrNoQuota = errors.New("core: no quota stage in the chain")
)

// Shared store sentinels (fleet.go).
var (
	// ErrStoreConflict: another instance changed what a change touches
	// since the revision this instance had applied; nothing was written,
	// and the change may be retried once the instance has caught up.
	ErrStoreConflict = errors.New("core: conflict in the shared store")
	// ErrStoreUnavailable: the shared store cannot be reached; nothing was
	// written.
	ErrStoreUnavailable = errors.New("core: shared store unavailable")
	// ErrStoreValue: a value in the shared store does not parse; the
	// instance keeps its last good state.
	ErrStoreValue = errors.New("core: bad value in the shared store")
)
