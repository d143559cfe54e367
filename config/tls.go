package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// tlsFiles reads the certificate and key variables: both or neither, and
// when both, files that load as a pair.
func (r *reader) tlsFiles(certVar, keyVar string) (certFile, keyFile string) {
	certFile, keyFile = r.str(certVar, ""), r.str(keyVar, "")
	switch {
	case certFile == "" && keyFile == "":
	case keyFile == "":
		r.fail(keyVar, "", "must be set too when %s is (both or neither): the PEM file of the certificate's private key", certVar)
	case certFile == "":
		r.fail(certVar, "", "must be set too when %s is (both or neither): the PEM file of the certificate (chain)", keyVar)
	default:
		if _, err := LoadTLSKeyPair(certFile, keyFile); err != nil {
			r.errs = append(r.errs, err)
		}
	}
	return certFile, keyFile
}

// LoadTLSKeyPair loads the certificate chain in certFile and its private
// key in keyFile (PEM). Its error is a *VarError naming the file at fault
// (TLS_CERT_FILE or TLS_KEY_FILE) and what is wrong with it. The server
// calls it again for each renewal it notices.
func LoadTLSKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readTLSFile("TLS_CERT_FILE", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := checkCertChain(certPEM); err != nil {
		return tls.Certificate{}, &VarError{Name: "TLS_CERT_FILE", Value: certFile, Problem: err.Error()}
	}
	keyPEM, err := readTLSFile("TLS_KEY_FILE", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &VarError{Name: "TLS_KEY_FILE", Value: keyFile,
			Problem: fmt.Sprintf("not the private key of the certificate in TLS_CERT_FILE (want a PEM private key): %v", err)}
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, &VarError{Name: "TLS_CERT_FILE", Value: certFile, Problem: err.Error()}
		}
	}
	return cert, nil
}

func readTLSFile(name, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return nil, &VarError{Name: name, Value: path, Problem: "cannot read the file: " + err.Error()}
	}
	return b, nil
}

// checkCertChain reports a file without a PEM certificate, or with one
// that does not parse, in words an operator can act on.
func checkCertChain(b []byte) error {
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d of the file does not parse: %v", n, err)
		}
	}
	if n == 0 {
		return errors.New("no PEM certificate in the file (want -----BEGIN CERTIFICATE-----, the server's certificate first)")
	}
	return nil
}
