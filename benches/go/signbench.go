// signbench: Go's issue path, for comparison with `make bench-sign` (benches/signing.rs).
//
// Usage: signbench DIR SECONDS. DIR holds signer.pem, signer.key (PKCS#8) and csr.pem, written
// by the Rust benchmark for the same configuration. For SECONDS, on one thread (GOMAXPROCS=1),
// it issues the way a Go issuer would with crypto/x509: decode the CSR PEM, parse the CSR,
// CheckSignature, CreateCertificate (which also verifies the new certificate's signature
// against the signer's public key) for the CSR's key and names with server and client auth,
// and PEM-encode the leaf followed by the signer. Prints issuances per second.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "signbench:", err)
		os.Exit(1)
	}
}

func read(dir, name string) []byte {
	b, err := os.ReadFile(filepath.Join(dir, name))
	must(err)
	return b
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: signbench DIR SECONDS")
		os.Exit(2)
	}
	dir := os.Args[1]
	seconds, err := strconv.ParseFloat(os.Args[2], 64)
	must(err)
	signerPEM := read(dir, "signer.pem")
	block, _ := pem.Decode(signerPEM)
	signer, err := x509.ParseCertificate(block.Bytes)
	must(err)
	keyBlock, _ := pem.Decode(read(dir, "signer.key"))
	parsedKey, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	must(err)
	key := parsedKey.(crypto.Signer)
	csrPEM := read(dir, "csr.pem")

	issue := func() {
		b, _ := pem.Decode(csrPEM)
		if b == nil {
			must(fmt.Errorf("no CSR PEM block"))
		}
		csr, err := x509.ParseCertificateRequest(b.Bytes)
		must(err)
		must(csr.CheckSignature())
		serialBytes := make([]byte, 16)
		_, err = rand.Read(serialBytes)
		must(err)
		serialBytes[0] = serialBytes[0]&0x7f | 0x40
		spki, err := x509.MarshalPKIXPublicKey(csr.PublicKey)
		must(err)
		ski := sha1.Sum(spki)
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          new(big.Int).SetBytes(serialBytes),
			NotBefore:             now,
			NotAfter:              now.Add(24 * time.Hour),
			DNSNames:              csr.DNSNames,
			IPAddresses:           csr.IPAddresses,
			URIs:                  csr.URIs,
			EmailAddresses:        csr.EmailAddresses,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
			SubjectKeyId:          ski[:],
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, csr.PublicKey, key)
		must(err)
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		out = append(out, signerPEM...)
		if len(out) == 0 {
			must(fmt.Errorf("empty output"))
		}
	}

	issue() // warm up
	budget := time.Duration(seconds * float64(time.Second))
	start := time.Now()
	n := 0
	for time.Since(start) < budget {
		issue()
		n++
	}
	fmt.Printf("%.1f\n", float64(n)/time.Since(start).Seconds())
}
