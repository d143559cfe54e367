package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"
)

// settings is a map-backed stand-in for the store's settings table.
type settings struct {
	mu    sync.Mutex
	m     map[string]string
	calls int
	err   error
}

func (s *settings) SetSettingIfAbsent(_ context.Context, key, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return "", s.err
	}
	if s.m == nil {
		s.m = map[string]string{}
	}
	if v, ok := s.m[key]; ok {
		return v, nil
	}
	s.m[key] = value
	return value, nil
}

func TestLoadOrCreateSecretConfiguredWins(t *testing.T) {
	s := &settings{m: map[string]string{SecretSettingKey: "stored"}}
	secret, generated, err := LoadOrCreateSecret(context.Background(), "my-secret", s)
	if err != nil || generated || string(secret) != "my-secret" {
		t.Fatalf("got %q, %v, %v; want my-secret, false, nil", secret, generated, err)
	}
	if s.calls != 0 {
		t.Errorf("store consulted %d times although a secret is configured", s.calls)
	}
}

func TestLoadOrCreateSecretGeneratedIsStable(t *testing.T) {
	ctx := context.Background()
	s := &settings{}
	first, generated, err := LoadOrCreateSecret(ctx, "", s)
	if err != nil || !generated {
		t.Fatalf("first call: %v, generated=%v", err, generated)
	}
	if raw, err := hex.DecodeString(string(first)); err != nil || len(raw) != 32 {
		t.Fatalf("generated secret %q is not 32 bytes as hex", first)
	}
	if s.m[SecretSettingKey] != string(first) {
		t.Fatalf("store holds %q, returned %q", s.m[SecretSettingKey], first)
	}
	second, generated, err := LoadOrCreateSecret(ctx, "", s)
	if err != nil || !generated || string(second) != string(first) {
		t.Fatalf("second call: %q, %v, %v; want the first secret %q", second, generated, err, first)
	}

	// Tokens issued by one process (the CLI) verify in another (the server).
	cli := newAuth(t, func(o *Options) { o.Secret = first })
	server := newAuth(t, func(o *Options) { o.Secret = second })
	tok, err := cli.Issue("alice", time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Verify(ctx, tok); err != nil {
		t.Fatalf("server refused the CLI's token: %v", err)
	}
}

func TestLoadOrCreateSecretConcurrentFirstStarts(t *testing.T) {
	s := &settings{}
	const n = 8
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			secret, _, err := LoadOrCreateSecret(context.Background(), "", s)
			if err != nil {
				t.Error(err)
			}
			got[i] = string(secret)
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if got[i] != got[0] {
			t.Fatalf("processes disagree on the key: %q vs %q", got[i], got[0])
		}
	}
}

func TestLoadOrCreateSecretErrors(t *testing.T) {
	ctx := context.Background()
	down := errors.New("disk full")
	if _, _, err := LoadOrCreateSecret(ctx, "", &settings{err: down}); !errors.Is(err, down) {
		t.Errorf("store error = %v, want it wrapped", err)
	}
	if _, _, err := LoadOrCreateSecret(ctx, "", &settings{m: map[string]string{SecretSettingKey: ""}}); err == nil {
		t.Error("an empty stored secret was accepted")
	}
	if _, _, err := LoadOrCreateSecret(ctx, "", nil); err == nil {
		t.Error("no secret and no store was accepted")
	}
}
