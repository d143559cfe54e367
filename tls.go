package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	stdlog "log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskpulse/taskpulse/config"
)

// How the server follows a renewed certificate: at most one look at the
// files per certCheckEvery, started by a handshake, which waits at most
// certCheckWait for it (a look is two stats; a reload a few reads and a
// parse). Disk slower than that delays the new certificate, never the
// handshakes.
const (
	certCheckEvery = time.Second
	certCheckWait  = 50 * time.Millisecond
)

// newTLSConfig is the server's TLS: 1.2 or later, ECDHE with AEAD ciphers
// for 1.2 (1.3's suites are all good), and the certificate from certs.
// HTTP/2 and HTTP/1.1 are offered by http.Server.ServeTLS (ALPN).
func newTLSConfig(certs *certReloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: certs.GetCertificate,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// certReloader serves the certificate in TLS_CERT_FILE and TLS_KEY_FILE
// and picks up its renewal without a restart: files replaced in place, by
// rename (certbot) or by swapping a symlink (a Kubernetes secret). It
// notices a change by the files' identity, size and modification time,
// so unchanged files are never parsed again. New files that do not load
// (half-written, mismatched, expired) are refused with a warning, and the
// certificate in use stays. Open connections are not affected by either.
type certReloader struct {
	certFile, keyFile string
	every, wait       time.Duration
	log               *slog.Logger
	// stat and load reach the files; tests replace them (slow disks).
	stat func(string) (fs.FileInfo, error)
	load func(certFile, keyFile string) (tls.Certificate, error)

	cur atomic.Pointer[tls.Certificate]

	mu      sync.Mutex
	next    time.Time     // no look at the files before this
	running chan struct{} // closed when the look in progress ends; nil if none
	closed  bool
	looks   sync.WaitGroup

	// Only the look in progress uses these (one at a time).
	seen   [2]fs.FileInfo // the files as last loaded or refused
	warned string         // the last problem logged, not repeated every look
}

// newCertReloader loads the files; an error names the file at fault.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{
		certFile: certFile, keyFile: keyFile,
		every: certCheckEvery, wait: certCheckWait,
		log: log, stat: os.Stat, load: config.LoadTLSKeyPair,
	}
	return r, r.init()
}

// init loads the certificate the server starts with.
func (r *certReloader) init() error {
	var err error
	r.seen, err = r.statFiles()
	if err != nil {
		return err
	}
	cert, err := r.load(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	if problem := validity(cert.Leaf, time.Now()); problem != "" {
		r.log.Warn("TLS certificate "+problem+": clients will refuse it", certAttrs(cert.Leaf)...)
	}
	r.cur.Store(&cert)
	r.next = time.Now().Add(r.every)
	r.log.Info("TLS on: serving HTTPS and WSS (HTTP/2 when the client offers it)", certAttrs(cert.Leaf)...)
	return nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// after a look at the files if one is due (waiting at most r.wait for it).
func (r *certReloader) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if done := r.startLook(); done != nil {
		var gone <-chan struct{} // the client's handshake was cancelled
		if ctx := hello.Context(); ctx != nil {
			gone = ctx.Done()
		}
		t := time.NewTimer(r.wait)
		select {
		case <-done:
		case <-t.C:
		case <-gone:
		}
		t.Stop()
	}
	return r.cur.Load(), nil
}

// startLook starts a look at the files if one is due and none is running;
// the returned channel is closed when it ends (nil if none started).
func (r *certReloader) startLook() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.running != nil || time.Now().Before(r.next) {
		return nil
	}
	done := make(chan struct{})
	r.running = done
	r.looks.Add(1)
	go func() {
		defer r.looks.Done()
		r.look()
		r.mu.Lock()
		r.running, r.next = nil, time.Now().Add(r.every)
		r.mu.Unlock()
		close(done)
	}()
	return done
}

// look reloads the files if they changed since they were last seen.
func (r *certReloader) look() {
	files, err := r.statFiles()
	if err != nil {
		// Between the two renames of a renewal, or gone: keep serving.
		r.refuse(err)
		return
	}
	if sameFile(r.seen[0], files[0]) && sameFile(r.seen[1], files[1]) {
		return
	}
	// Stamped before reading: a write after this changes the stamp, so a
	// file caught half-written is read again once complete.
	r.seen = files
	cert, err := r.load(r.certFile, r.keyFile)
	if err != nil {
		r.refuse(err)
		return
	}
	old := r.cur.Load()
	now := time.Now()
	if problem := validity(cert.Leaf, now); problem != "" && validity(old.Leaf, now) == "" {
		r.refuse(errors.New("the new certificate " + problem))
		return
	}
	r.cur.Store(&cert)
	r.warned = ""
	r.log.Info("TLS certificate reloaded; new handshakes use it, open connections keep theirs", certAttrs(cert.Leaf)...)
}

// refuse logs why the files were not loaded, once per distinct problem.
func (r *certReloader) refuse(err error) {
	if msg := err.Error(); msg != r.warned {
		r.warned = msg
		r.log.Warn("TLS certificate files changed but cannot be used; still serving the previous certificate",
			append([]any{"err", err}, certAttrs(r.cur.Load().Leaf)...)...)
	}
}

func (r *certReloader) statFiles() ([2]fs.FileInfo, error) {
	c, err1 := r.stat(r.certFile)
	k, err2 := r.stat(r.keyFile)
	return [2]fs.FileInfo{c, k}, errors.Join(err1, err2)
}

// Close stops starting looks and waits (briefly: a look may be stuck on a
// dead disk) for the one in progress.
func (r *certReloader) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.looks.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		r.log.Warn("TLS: a look at the certificate files is still stuck on the disk at shutdown")
	}
}

// Leaf is the certificate handshakes use now.
func (r *certReloader) Leaf() *x509.Certificate { return r.cur.Load().Leaf }

// httpErrorLog is net/http's error log: warnings, except failed TLS
// handshakes, which scanners and clients that do not trust the certificate
// cause all day long: those are debug (LOG_LEVEL=debug shows them).
func httpErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(handshakeFilter{log}, "", 0)
}

type handshakeFilter struct{ log *slog.Logger }

func (f handshakeFilter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	f.log.Log(context.Background(), level, msg)
	return len(p), nil
}

// certHost is the host to show in the URL of a server bound to every
// interface: localhost if the certificate is for it, else its first DNS
// name that is not a wildcard, else its first IP address, so a browser
// opening the link finds the name it expects.
func certHost(c *x509.Certificate) string {
	if c.VerifyHostname("localhost") == nil {
		return "localhost"
	}
	for _, n := range c.DNSNames {
		if !strings.HasPrefix(n, "*") {
			return n
		}
	}
	if len(c.IPAddresses) > 0 {
		return c.IPAddresses[0].String()
	}
	return "localhost"
}

// sameFile: the same file (device and inode), size and modification time.
func sameFile(a, b fs.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// validity is what is wrong with the certificate's dates at now, or "".
func validity(c *x509.Certificate, now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return "expired on " + c.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(c.NotBefore):
		return "is not valid before " + c.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

func certAttrs(c *x509.Certificate) []any {
	return []any{"subject", c.Subject.String(), "dnsNames", c.DNSNames, "ips", c.IPAddresses,
		"serial", c.SerialNumber.Text(16), "notAfter", c.NotAfter.UTC().Format(time.RFC3339)}
}
