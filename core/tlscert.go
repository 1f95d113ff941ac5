package core

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// CertStore serves a certificate and key pair from files to TLS
// handshakes and reloads it on demand (SIGHUP): each handshake reads the
// pair in force at that moment (tls.Config.GetCertificate), so a renewed
// certificate applies to new connections without a restart, and a reload
// that fails keeps the pair that works.
type CertStore struct {
	files TLSFiles
	cert  atomic.Pointer[tls.Certificate]
}

// NewCertStore loads the pair once; an error wraps ErrTLSFiles.
func NewCertStore(files TLSFiles) (*CertStore, error) {
	cs := &CertStore{files: files}
	if err := cs.Reload(); err != nil {
		return nil, err
	}
	return cs, nil
}

// Reload reads the files again. On error the pair in force stays.
func (cs *CertStore) Reload() error {
	c, err := tls.LoadX509KeyPair(cs.files.Cert, cs.files.Key)
	if err != nil {
		return fmt.Errorf("%w: %s, %s: %w", ErrTLSFiles, cs.files.Cert, cs.files.Key, err)
	}
	cs.cert.Store(&c)
	return nil
}

// Config is a TLS server configuration that reads the pair in force at
// each handshake (TLS 1.2 and later).
func (cs *CertStore) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return cs.cert.Load(), nil
		},
	}
}
