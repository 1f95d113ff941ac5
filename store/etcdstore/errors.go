package etcdstore

import "errors"

// Sentinel errors.
var (
	// ErrNoCopy: etcd cannot be reached at start and data_dir holds no
	// copy of the shared state to serve from.
	ErrNoCopy = errors.New("etcdstore: etcd unreachable at start and no local copy of the shared state")
	// ErrForeignKey: a key under the prefix is not one socks5d writes (a
	// wrong prefix, most likely).
	ErrForeignKey = errors.New("etcdstore: key under the prefix is not socks5d's")
	// ErrCredentials: etcd refused store.username/password.
	ErrCredentials = errors.New("etcdstore: etcd refused the credentials")
	// ErrTLS: the TLS files of store.tls cannot be used.
	ErrTLS = errors.New("etcdstore: TLS files")
)
