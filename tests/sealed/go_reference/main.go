// A stand-in for kubeseal's side of the interface, built only on Go's standard library: the
// same crypto/x509, crypto/rsa and crypto/cipher code that kubeseal and the Sealed Secrets
// controller run. Written for the tests from the format description in issue 3.
//
//	ref cert CERT.pem         read a certificate as kubeseal --cert does; print the key size
//	ref seal CERT.pem LABEL   seal stdin; print the base64 value
//	ref open KEY.pem LABEL    open the base64 value on stdin (PKCS#1 key); print the plaintext
//	ref mkcert DIR BITS       make a key and certificate the way the controller makes its own;
//	                          write DIR/tls.crt and DIR/tls.key (PKCS#1)
package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func readCert(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	if time.Now().After(cert.NotAfter) {
		return nil, errors.New("certificate expired")
	}
	if cert.KeyUsage != x509.KeyUsageEncipherOnly || !cert.IsCA {
		return nil, fmt.Errorf("unexpected key usage %d or CA %v", cert.KeyUsage, cert.IsCA)
	}
	return pub, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func seal(pub *rsa.PublicKey, plaintext, label []byte) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, err
	}
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, key, label)
	if err != nil {
		return nil, err
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(wrapped)))
	out = append(out, wrapped...)
	return aead.Seal(out, make([]byte, 12), plaintext, nil), nil
}

func open(priv *rsa.PrivateKey, data, label []byte) ([]byte, error) {
	if len(data) < 2 {
		return nil, errors.New("short")
	}
	n := int(binary.BigEndian.Uint16(data))
	if len(data) < 2+n {
		return nil, errors.New("short")
	}
	key, err := rsa.DecryptOAEP(sha256.New(), rand.Reader, priv, data[2:2+n], label)
	if err != nil {
		return nil, err
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, make([]byte, 12), data[2+n:], nil)
}

// mkcert follows the controller's key generation as its source describes it: a random serial
// below 2^128, a subject with only a common name (empty by default), valid from now for the
// default --key-ttl of 87,600 h, key usage encipherOnly, a CA, self-signed.
func mkcert(dir string, bits int) error {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		KeyUsage:              x509.KeyUsageEncipherOnly,
		NotBefore:             now.UTC(),
		NotAfter:              now.Add(87600 * time.Hour).UTC(),
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{
		Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key),
	})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600)
}

func run() error {
	if len(os.Args) < 3 {
		return errors.New("usage: ref cert|seal|open FILE [LABEL] | mkcert DIR BITS")
	}
	label := []byte{}
	if len(os.Args) > 3 {
		label = []byte(os.Args[3])
	}
	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	switch os.Args[1] {
	case "mkcert":
		bits, err := strconv.Atoi(os.Args[3])
		if err != nil {
			return err
		}
		return mkcert(os.Args[2], bits)
	case "cert":
		pub, err := readCert(os.Args[2])
		if err != nil {
			return err
		}
		fmt.Println(pub.N.BitLen())
	case "seal":
		pub, err := readCert(os.Args[2])
		if err != nil {
			return err
		}
		out, err := seal(pub, stdin, label)
		if err != nil {
			return err
		}
		fmt.Print(base64.StdEncoding.EncodeToString(out))
	case "open":
		data, err := os.ReadFile(os.Args[2])
		if err != nil {
			return err
		}
		block, _ := pem.Decode(data)
		if block == nil {
			return errors.New("no PEM block")
		}
		priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(stdin)))
		if err != nil {
			return err
		}
		out, err := open(priv, raw, label)
		if err != nil {
			return err
		}
		os.Stdout.Write(out)
	default:
		return errors.New("unknown command")
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
