package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// clientTLS is the TLS configuration of -tls: the server's certificate
// is verified for host, against the CA certificates in caFile when given,
// else the system's.
func clientTLS(host, caFile string) (*tls.Config, error) {
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return c, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	c.RootCAs = pool
	return c, nil
}

// dial connects to addr, over TLS when tc is set (the handshake, and
// the certificate's verification, happen before dial returns).
func dial(ctx context.Context, addr string, tc *tls.Config) (net.Conn, error) {
	if tc == nil {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	return (&tls.Dialer{Config: tc}).DialContext(ctx, "tcp", addr)
}

// dialErrorText explains a failed connection; a certificate that cannot
// be verified says what to do about it.
func dialErrorText(err error) string {
	var verr *tls.CertificateVerificationError
	var rerr tls.RecordHeaderError
	switch {
	case errors.As(err, &verr):
		return fmt.Sprintf("the server's TLS certificate cannot be verified (%v); give the CA that signed it with -cafile FILE", verr.Err)
	case errors.As(err, &rerr):
		return "the server did not answer in TLS: is pctp.tls set on it? (without -tls the client speaks plaintext)"
	}
	return err.Error()
}
