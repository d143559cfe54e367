package wsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTLS: wss:// with TLSClientConfig trusting the server; the upgrade
// goes over HTTP/1.1 although the server offers HTTP/2.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(fakeHandler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https")

	_, err := Dial(ctx(t), url, DialOptions{})
	if ue := (x509.UnknownAuthorityError{}); !errors.As(err, &ue) {
		t.Fatalf("Dial without trusting the test CA = %v, want x509.UnknownAuthorityError", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := dial(t, url, DialOptions{TLSClientConfig: &tls.Config{RootCAs: roots}})
	if err := c.Init(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.Execute(ctx(t), "count 1", nil)
	if err != nil || string(r.Data) != `{"i":0}` {
		t.Fatalf("Execute over wss = %s, %v", r.Data, err)
	}
}
