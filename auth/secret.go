package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// SecretSettingKey is the store setting that keeps the generated JWT key.
const SecretSettingKey = "jwt_secret"

// LoadOrCreateSecret returns the HS256 key. A configured JWT_SECRET is used
// as is (its UTF-8 bytes). Without one, a random 32-byte key is generated,
// written as hex text into the store setting SecretSettingKey unless one is
// already there, and the stored text's bytes are the key: every process on
// the same database (the server, `taskpulse token`) agrees, and an operator
// can move the value into JWT_SECRET unchanged. generated reports that the
// key comes from the store, so the caller can warn that it is not configured.
func LoadOrCreateSecret(ctx context.Context, configured string, settings interface {
	SetSettingIfAbsent(ctx context.Context, key, value string) (string, error)
}) (secret []byte, generated bool, err error) {
	if configured != "" {
		return []byte(configured), false, nil
	}
	if settings == nil {
		return nil, false, errors.New("auth: no JWT_SECRET and no store to keep a generated one")
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, false, fmt.Errorf("auth: generate JWT secret: %w", err)
	}
	stored, err := settings.SetSettingIfAbsent(ctx, SecretSettingKey, hex.EncodeToString(key[:]))
	if err != nil {
		return nil, false, fmt.Errorf("auth: keep generated JWT secret: %w", err)
	}
	if stored == "" {
		return nil, false, fmt.Errorf("auth: stored setting %q is empty", SecretSettingKey)
	}
	return []byte(stored), true, nil
}
