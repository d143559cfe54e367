package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// Limits and defaults of token verification.
const (
	// MaxLeeway is the most clock skew tolerated on exp, nbf and iat
	// (the contract's bound); larger Options.Leeway values are capped.
	MaxLeeway = 5 * time.Second
	// MaxTokenLen bounds a token before any decoding, so a client cannot
	// make the server base64- and JSON-decode megabytes.
	MaxTokenLen = 8 << 10
)

// Token roles, the values of the "role" claim.
const (
	RoleAdmin   = "admin"
	RoleService = "service"
)

// The one algorithm accepted. It is fixed here, never read from a token.
const algorithm = "HS256"

// UserLookup finds a stored user; store.Store satisfies it.
type UserLookup interface {
	User(ctx context.Context, id string) (store.User, error)
}

var _ UserLookup = store.Store(nil)

// Options configure an Authenticator.
type Options struct {
	// Secret is the HS256 key (required).
	Secret []byte
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer, Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// MaxLeeway; larger values are capped at MaxLeeway.
	Leeway time.Duration
	// Users confirms that a token's subject exists (required).
	Users UserLookup
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives failures that are the server's, not the client's
	// (a store error while checking a token); nil means slog.Default().
	Logger *slog.Logger
	// OnFailure, if set, is told of every HTTP request Middleware or
	// Authenticator.Required answers 401, with the refusal (its message
	// says why; it never quotes the token): for metrics and the audit log.
	OnFailure func(r *http.Request, err *errs.Error)
}

// Authenticator verifies and issues tokens. It is safe for concurrent use.
type Authenticator struct {
	secret   []byte
	issuer   string
	audience string
	users    UserLookup
	now      func() time.Time
	log      *slog.Logger
	parser   *jwt.Parser
	failed   func(r *http.Request, err *errs.Error) // never nil
}

// NewAuthenticator checks opts and builds an Authenticator.
func NewAuthenticator(opts Options) (*Authenticator, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("auth: empty JWT secret")
	}
	if opts.Users == nil {
		return nil, errors.New("auth: no user lookup: tokens of unknown users must be refused")
	}
	if opts.Leeway < 0 {
		return nil, fmt.Errorf("auth: negative leeway %v", opts.Leeway)
	}
	leeway := opts.Leeway
	if leeway == 0 || leeway > MaxLeeway {
		leeway = MaxLeeway
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{algorithm}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	failed := opts.OnFailure
	if failed == nil {
		failed = func(*http.Request, *errs.Error) {}
	}
	return &Authenticator{
		secret:   append([]byte(nil), opts.Secret...),
		issuer:   opts.Issuer,
		audience: opts.Audience,
		users:    opts.Users,
		now:      now,
		log:      log,
		parser:   jwt.NewParser(popts...),
		failed:   failed,
	}, nil
}

// claims is taskpulse's token body: the registered claims and a role.
type claims struct {
	jwt.RegisteredClaims
	// Role is a pointer so an explicit "" (refused) differs from no role.
	Role *string `json:"role,omitempty"`
}

// Verify checks token and returns its Viewer. A refused token is an
// *errs.Error with Code Unauthenticated and a message saying why (never
// quoting the token); a store failure while looking up the user is an
// internal error.
func (a *Authenticator) Verify(ctx context.Context, token string) (Viewer, error) {
	if token == "" {
		return Viewer{}, unauthenticated("missing token")
	}
	if len(token) > MaxTokenLen {
		return Viewer{}, unauthenticated("token too long")
	}
	var c claims
	tok, err := a.parser.ParseWithClaims(token, &c, a.key)
	if err != nil {
		return Viewer{}, unauthenticated(a.why(err, tok, &c))
	}
	if c.Subject == "" {
		return Viewer{}, unauthenticated("token has no sub claim")
	}
	v := Viewer{UserID: c.Subject, ExpiresAt: c.ExpiresAt.UTC()}
	if c.IssuedAt != nil {
		v.IssuedAt = c.IssuedAt.UTC()
	}
	if c.Role != nil {
		switch *c.Role {
		case RoleAdmin, RoleService:
			v.Role = *c.Role
		default:
			return Viewer{}, unauthenticated("token role not recognised")
		}
	}
	return a.Current(ctx, v)
}

// key hands the parser the secret. WithValidMethods already refused every
// algorithm but HS256; checking the method family again costs nothing and
// keeps the secret away from any other verifier should the options change.
func (a *Authenticator) key(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
		return nil, errors.New("unexpected signing method")
	}
	return a.secret, nil
}

// why turns a parse failure into the reason a client is told.
func (a *Authenticator) why(err error, tok *jwt.Token, c *claims) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signing algorithm not allowed (want " + algorithm + ")"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && tok.Method.Alg() != algorithm {
			return "token signing algorithm not allowed (want " + algorithm + ")"
		}
		return "invalid token signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c.ExpiresAt == nil:
			return "token has no exp claim"
		case a.issuer != "" && c.Issuer == "":
			return "token has no iss claim"
		case a.audience != "" && len(c.Audience) == 0:
			return "token has no aud claim"
		}
		return "token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	}
	return "invalid token"
}

func unauthenticated(why string) *errs.Error {
	return errs.E(errs.Unauthenticated, "%s", why)
}

// Issue signs an HS256 token for userID valid for ttl from now, with the
// configured iss and aud and, when role is not empty, that role ("admin" or
// "service"). It does not check that the user exists; Verify does.
func (a *Authenticator) Issue(userID string, ttl time.Duration, role string) (string, error) {
	if userID == "" {
		return "", errs.E(errs.BadUserInput, "token subject must not be empty")
	}
	if ttl <= 0 {
		return "", errs.E(errs.BadUserInput, "token lifetime must be positive, got %v", ttl)
	}
	c := claims{}
	switch role {
	case "":
	case RoleAdmin, RoleService:
		c.Role = &role
	default:
		return "", errs.E(errs.BadUserInput, "unknown role %q: want %q, %q or none", role, RoleAdmin, RoleService)
	}
	now := a.now()
	c.Subject = userID
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	c.Issuer = a.issuer
	if a.audience != "" {
		c.Audience = jwt.ClaimStrings{a.audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}
