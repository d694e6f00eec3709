package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki writes a CA, a server certificate for 127.0.0.1 and client certificates with the
// given common names, as PEM files in dir.
func pki(t *testing.T, dir string, clients ...string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hms test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	issue := func(name, cn string, serial int64, usage x509.ExtKeyUsage, ips []net.IP) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, IPAddresses: ips,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	issue("server", "127.0.0.1", 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	for i, cn := range clients {
		issue(cn, cn, int64(10+i), x509.ExtKeyUsageClientAuth, nil)
	}
}

// TestMutualTLS: the server speaks TLS; a verified client certificate is a principal's
// credential, recorded as the initiator; tokens still work beside it.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki(t, dir, "alice.example", "mallory.example")
	tokens := filepath.Join(dir, "tokens.json")
	os.WriteFile(tokens, []byte(`{"principals": [
		{"name": "alice", "role": "admin", "certificates": ["alice.example"]},
		{"name": "vera", "role": "viewer", "tokens": ["viewer-token-0123456789"]}]}`), 0o600)
	p := func(name string) string { return filepath.Join(dir, name) }
	s := startServer(t, "--store", "memory", "--auth-tokens", tokens,
		"--tls-cert", p("server.pem"), "--tls-key", p("server-key.pem"), "--tls-client-ca", p("ca.pem"))
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("server URL %s", s.url)
	}
	asAlice := []string{"--tls-ca", p("ca.pem"), "--tls-cert", p("alice.example.pem"), "--tls-key", p("alice.example-key.pem")}
	for _, proto := range []string{"connect", "grpc"} {
		id := "via-" + proto
		if out, code := cli(t, s.url, append(asAlice, "--protocol", proto, "agents", "register", id)...); code != exitOK {
			t.Fatalf("%s as alice's certificate: %d %s", proto, code, out)
		}
		out, _ := cli(t, s.url, append(asAlice, "agents", "history", id)...)
		if !strings.Contains(out, "alice") {
			t.Errorf("initiator is not the certificate's principal: %s", out)
		}
	}
	// grpc-go's client (the load generator's) over mutual TLS reaches grpc-go's side.
	if out, code := cli(t, s.url, append(asAlice, "--protocol", "grpc", "bench", "--clients", "1", "--duration", "300ms")...); code != exitOK || !strings.Contains(out, "1 clients") {
		t.Errorf("grpc-go client with alice's certificate: %d %s", code, out)
	}
	if out, code := cli(t, s.url, "--tls-ca", p("ca.pem"), "--tls-cert", p("mallory.example.pem"), "--tls-key", p("mallory.example-key.pem"),
		"agents", "list"); code != exitError || !strings.Contains(out, `client certificate "mallory.example" is not a known principal`) {
		t.Errorf("unknown certificate: %d %s", code, out)
	}
	if out, code := cli(t, s.url, "--tls-ca", p("ca.pem"), "--token", "viewer-token-0123456789", "agents", "list"); code != exitOK || !strings.Contains(out, "via-grpc") {
		t.Errorf("token over TLS: %d %s", code, out)
	}
	if out, code := cli(t, s.url, "agents", "list"); code != exitUnavailable || !strings.Contains(out, "certificate") {
		t.Errorf("without the CA the server is not trusted: %d %s", code, out)
	}
}
