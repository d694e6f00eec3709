package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsFlags are a certificate, its key and a CA bundle: the server's own, or a client's.
type tlsFlags struct{ cert, key, ca string }

func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load CA %s: no PEM certificate in it", path)
	}
	return pool, nil
}

func (f *tlsFlags) keyPair() ([]tls.Certificate, error) {
	if f.cert == "" && f.key == "" {
		return nil, nil
	}
	if f.cert == "" || f.key == "" {
		return nil, usageError{fmt.Errorf("give both a certificate and its key")}
	}
	kp, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", f.cert, err)
	}
	return []tls.Certificate{kp}, nil
}

// server is the serving TLS configuration, or nil for cleartext.
func (f *tlsFlags) server() (*tls.Config, error) {
	certs, err := f.keyPair()
	if err != nil || certs == nil {
		if f.ca != "" && err == nil {
			return nil, usageError{fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key")}
		}
		return nil, err
	}
	tc := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if f.ca != "" {
		if tc.ClientCAs, err = loadPool(f.ca); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.VerifyClientCertIfGiven // a certificate is one credential; a token is another
	}
	return tc, nil
}

// client is the client's TLS configuration, or nil for the defaults.
func (f *tlsFlags) client() (*tls.Config, error) {
	certs, err := f.keyPair()
	if err != nil {
		return nil, err
	}
	if certs == nil && f.ca == "" {
		return nil, nil
	}
	tc := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		if tc.RootCAs, err = loadPool(f.ca); err != nil {
			return nil, err
		}
	}
	return tc, nil
}
