package main

import (
	"crypto/tls"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/internal/testcert"
)

// certFiles is a certificate and key on disk, renewed by the tests.
type certFiles struct {
	t         *testing.T
	ca        *testcert.CA
	cert, key string
}

func newCertFiles(t *testing.T) *certFiles {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &certFiles{t: t, ca: ca, cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
}

// issue makes a certificate for the loopback names, valid from nb to na
// (zero: an hour ago, a day from now), without writing it.
func (f *certFiles) issue(nb, na time.Time) *testcert.Leaf {
	f.t.Helper()
	l, err := f.ca.Issue([]string{"127.0.0.1", "localhost"}, nb, na)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// renew replaces the files with a new certificate as certbot does
// (temporary file + rename) and returns its serial.
func (f *certFiles) renew() string {
	f.t.Helper()
	l := f.issue(time.Time{}, time.Time{})
	if err := l.WriteFiles(f.cert, f.key); err != nil {
		f.t.Fatal(err)
	}
	return testcert.SerialHex(l.Cert)
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// testReloader is a certReloader that looks at the files on every
// handshake and waits for the look, so a test sees the outcome of each.
func testReloader(t *testing.T, f *certFiles, logs *logBuffer) *certReloader {
	t.Helper()
	r := &certReloader{certFile: f.cert, keyFile: f.key, every: 0, wait: 5 * time.Second,
		log: slog.New(slog.NewTextHandler(logs, nil)), stat: os.Stat, load: config.LoadTLSKeyPair}
	if err := r.init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// serial is the serial of the certificate a handshake gets now.
func serial(t *testing.T, r *certReloader) string {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil {
		t.Fatalf("GetCertificate = %v, %v", c, err)
	}
	return testcert.SerialHex(c.Leaf)
}

const refusedMsg = "still serving the previous certificate"

func TestCertReloaderFollowsRenewal(t *testing.T) {
	tests := []struct {
		name  string
		renew func(f *certFiles) string
	}{
		{"rename (certbot)", (*certFiles).renew},
		{"in place", func(f *certFiles) string {
			l := f.issue(time.Time{}, time.Time{})
			if err := os.WriteFile(f.key, l.KeyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f.cert, l.CertPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			return testcert.SerialHex(l.Cert)
		}},
		{"symlink swap (Kubernetes secret)", func(f *certFiles) string {
			// The files are links into ..data, itself a link to a
			// versioned directory; an update writes a new directory and
			// renames a new ..data link over the old one.
			dir := filepath.Dir(f.cert)
			l := f.issue(time.Time{}, time.Time{})
			v := filepath.Join(dir, "..v2")
			if err := os.Mkdir(v, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := l.WriteFiles(filepath.Join(v, "tls.crt"), filepath.Join(v, "tls.key")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			return testcert.SerialHex(l.Cert)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCertFiles(t)
			if strings.HasPrefix(tt.name, "symlink") {
				// Start as a mounted secret: cert.pem → ..data/tls.crt → ..v1/tls.crt.
				dir := filepath.Dir(f.cert)
				l := f.issue(time.Time{}, time.Time{})
				if err := os.Mkdir(filepath.Join(dir, "..v1"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := l.WriteFiles(filepath.Join(dir, "..v1", "tls.crt"), filepath.Join(dir, "..v1", "tls.key")); err != nil {
					t.Fatal(err)
				}
				for _, link := range [][2]string{{"..v1", "..data"}, {"..data/tls.crt", "cert.pem"}, {"..data/tls.key", "key.pem"}} {
					if err := os.Symlink(link[0], filepath.Join(dir, link[1])); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				f.renew()
			}
			logs := &logBuffer{}
			r := testReloader(t, f, logs)
			var loads atomic.Int32
			r.load = func(c, k string) (tls.Certificate, error) { loads.Add(1); return config.LoadTLSKeyPair(c, k) }
			first := serial(t, r)
			for range 10 {
				if got := serial(t, r); got != first {
					t.Fatalf("serial changed to %s without a renewal", got)
				}
			}
			if n := loads.Load(); n != 0 {
				t.Fatalf("unchanged files parsed %d times, want 0", n)
			}
			want := tt.renew(f)
			if got := serial(t, r); got != want {
				t.Fatalf("after renewal a handshake gets %s, want %s", got, want)
			}
			if n := logs.count("TLS certificate reloaded"); n != 1 {
				t.Fatalf("%d reload lines logged, want 1:\n%s", n, logs.String())
			}
		})
	}
}

func TestCertReloaderKeepsCertOnBadRenewal(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(f *certFiles)
	}{
		{"certificate half written", func(f *certFiles) {
			l := f.issue(time.Time{}, time.Time{})
			if err := os.WriteFile(f.cert, l.CertPEM[:len(l.CertPEM)/2], 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"new certificate, old key", func(f *certFiles) {
			if err := testcert.WriteFile(f.cert, f.issue(time.Time{}, time.Time{}).CertPEM); err != nil {
				t.Fatal(err)
			}
		}},
		{"key is garbage", func(f *certFiles) {
			if err := testcert.WriteFile(f.key, []byte("not a key")); err != nil {
				t.Fatal(err)
			}
		}},
		{"files removed", func(f *certFiles) {
			if err := os.Remove(f.cert); err != nil {
				t.Fatal(err)
			}
		}},
		{"new certificate expired", func(f *certFiles) {
			l := f.issue(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
			if err := l.WriteFiles(f.cert, f.key); err != nil {
				t.Fatal(err)
			}
		}},
		{"new certificate not valid yet", func(f *certFiles) {
			l := f.issue(time.Now().Add(time.Hour), time.Now().Add(48*time.Hour))
			if err := l.WriteFiles(f.cert, f.key); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCertFiles(t)
			f.renew()
			logs := &logBuffer{}
			r := testReloader(t, f, logs)
			old := serial(t, r)
			tt.spoil(f)
			for range 5 {
				if got := serial(t, r); got != old {
					t.Fatalf("after a bad renewal a handshake gets %s, want the old %s", got, old)
				}
			}
			if n := logs.count(refusedMsg); n != 1 {
				t.Fatalf("%d warnings, want 1 (not one per handshake):\n%s", n, logs.String())
			}
			// The next good renewal is picked up.
			want := f.renew()
			if got := serial(t, r); got != want {
				t.Fatalf("after a good renewal a handshake gets %s, want %s", got, want)
			}
		})
	}
}

// TestCertReloaderLooksAtMostEvery: between two looks no handshake
// touches the disk, renewed or not.
func TestCertReloaderLooksAtMostEvery(t *testing.T) {
	f := newCertFiles(t)
	f.renew()
	r := testReloader(t, f, &logBuffer{})
	r.every = time.Hour
	serial(t, r) // a look, then none for an hour
	var stats atomic.Int32
	r.stat = func(p string) (fs.FileInfo, error) { stats.Add(1); return os.Stat(p) }
	old := serial(t, r)
	f.renew()
	for range 100 {
		if got := serial(t, r); got != old {
			t.Fatalf("certificate changed to %s before the next look was due", got)
		}
	}
	if n := stats.Load(); n != 0 {
		t.Fatalf("%d stats in 100 handshakes between looks, want 0", n)
	}
}

// TestCertReloaderSlowDisk: a look stuck on the disk delays no handshake
// by more than the wait, and no second look starts beside it.
func TestCertReloaderSlowDisk(t *testing.T) {
	f := newCertFiles(t)
	f.renew()
	r := testReloader(t, f, &logBuffer{})
	r.wait = 20 * time.Millisecond
	release := make(chan struct{})
	var stats atomic.Int32
	r.stat = func(p string) (fs.FileInfo, error) {
		stats.Add(1)
		<-release
		return os.Stat(p)
	}
	old := serial(t, r)
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for range 50 {
		wg.Go(func() {
			start := time.Now()
			c, _ := r.GetCertificate(&tls.ClientHelloInfo{})
			d := int64(time.Since(start))
			for cur := slowest.Load(); d > cur && !slowest.CompareAndSwap(cur, d); cur = slowest.Load() {
			}
			if testcert.SerialHex(c.Leaf) != old {
				t.Error("a handshake got another certificate")
			}
		})
	}
	wg.Wait()
	if d := time.Duration(slowest.Load()); d > 500*time.Millisecond {
		t.Fatalf("a handshake waited %v for a stuck disk, want at most about %v", d, r.wait)
	}
	if n := stats.Load(); n != 1 {
		t.Fatalf("%d stats started while the first is stuck, want 1", n)
	}
	want := f.renew()
	close(release)
	// The stuck look completes and sees the renewal; the next handshake has it.
	deadline := time.Now().Add(5 * time.Second)
	for serial(t, r) != want {
		if time.Now().After(deadline) {
			t.Fatal("renewal not picked up after the disk recovered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCertReloaderCloseWaitsForLook: Close leaves no look running.
func TestCertReloaderCloseWaitsForLook(t *testing.T) {
	f := newCertFiles(t)
	f.renew()
	r := testReloader(t, f, &logBuffer{})
	r.wait = time.Millisecond
	release := make(chan struct{})
	r.stat = func(p string) (fs.FileInfo, error) { <-release; return os.Stat(p) }
	serial(t, r) // starts a look that blocks
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	r.Close()
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if running != nil {
		t.Fatal("a look still runs after Close")
	}
	r.stat = func(string) (fs.FileInfo, error) { t.Error("a look after Close"); return nil, fs.ErrNotExist }
	serial(t, r)
}

// TestCertHost: the host a wildcard-bound server shows is one its
// certificate is for.
func TestCertHost(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		hosts []string
		want  string
	}{
		{[]string{"127.0.0.1", "localhost"}, "localhost"},
		{[]string{"*.example.com", "api.example.com"}, "api.example.com"},
		{[]string{"*.example.com"}, "localhost"},
		{[]string{"10.0.0.5"}, "10.0.0.5"},
	} {
		l, err := ca.Issue(tt.hosts, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got := certHost(l.Cert); got != tt.want {
			t.Errorf("certHost(%v) = %s, want %s", tt.hosts, got, tt.want)
		}
	}
}
