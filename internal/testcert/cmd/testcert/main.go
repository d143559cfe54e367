// Command testcert writes a test CA and a server certificate it signs into
// a directory, for tests that run the real binary over TLS (test/js):
//
//	go run ./internal/testcert/cmd/testcert -dir DIR [-hosts 127.0.0.1,localhost]
//
// DIR gets ca.pem (what a client trusts), ca-key.pem, cert.pem and key.pem
// (TLS_CERT_FILE, TLS_KEY_FILE). Run again on the same DIR it keeps the CA
// and renews the server certificate in place (temporary file + rename, as
// certbot does). It prints the new certificate's serial number (hex) on
// stdout. For tests only.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/internal/testcert"
)

func main() {
	dir := flag.String("dir", "", "directory to write ca.pem, ca-key.pem, cert.pem and key.pem into (required)")
	hosts := flag.String("hosts", "127.0.0.1,localhost", "comma-separated IP addresses and DNS names the certificate is for")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	serial, err := write(*dir, strings.Split(*hosts, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcert:", err)
		os.Exit(1)
	}
	fmt.Println(serial)
}

func write(dir string, hosts []string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	ca, err := testcert.LoadCA(caCert, caKey)
	if os.IsNotExist(err) {
		if ca, err = testcert.NewCA(); err == nil {
			err = ca.WriteFiles(caCert, caKey)
		}
	}
	if err != nil {
		return "", err
	}
	leaf, err := ca.Issue(hosts, time.Time{}, time.Time{})
	if err != nil {
		return "", err
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")); err != nil {
		return "", err
	}
	return testcert.SerialHex(leaf.Cert), nil
}
