package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/taskpulse/taskpulse/errs"
)

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header value. The scheme is case-insensitive; surrounding spaces are
// ignored. A token cannot contain whitespace, so "Bearer a b" is refused.
func BearerToken(header string) (token string, ok bool) {
	header = strings.TrimSpace(header)
	i := strings.IndexAny(header, " \t")
	if i < 0 || !strings.EqualFold(header[:i], "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(header[i:])
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}

// TokenFromInitPayload finds the token in a graphql-ws connection_init
// payload: {"token": "<jwt>"}, {"Authorization": "Bearer <jwt>"} (or
// "authorization"), or the same nested under "headers", as some clients send
// it. The first of those keys present decides: a non-string value or a
// malformed one is "not found" rather than a fallback to another key, so a
// payload never authenticates with a credential the client did not mean.
func TokenFromInitPayload(payload map[string]any) (string, bool) {
	if v, ok := payload["token"]; ok {
		s, _ := v.(string)
		if t, ok := BearerToken(s); ok {
			return t, true // tolerate {"token": "Bearer <jwt>"}
		}
		s = strings.TrimSpace(s)
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return "", false
		}
		return s, true
	}
	if t, found, ok := authorizationIn(payload); found {
		return t, ok
	}
	if h, ok := payload["headers"]; ok {
		switch h := h.(type) {
		case map[string]any:
			t, _, ok := authorizationIn(h)
			return t, ok
		case map[string]string:
			m := make(map[string]any, len(h))
			for k, v := range h {
				m[k] = v
			}
			t, _, ok := authorizationIn(m)
			return t, ok
		}
	}
	return "", false
}

// authorizationIn looks for an Authorization entry; found reports whether
// the key was there at all.
func authorizationIn(m map[string]any) (token string, found, ok bool) {
	for _, k := range [...]string{"Authorization", "authorization"} {
		if v, present := m[k]; present {
			s, _ := v.(string)
			t, ok := BearerToken(s)
			return t, true, ok
		}
	}
	return "", false, false
}

// Middleware authenticates HTTP requests by their Authorization header. A
// valid Bearer token puts its Viewer in the request context. A request
// without the header (or with an empty one) passes on anonymous, for
// Required (or the handler) to decide. A header that is present but not a
// valid Bearer token is answered 401 here, WebSocket upgrades included
// (their connection_init token is checked by the transport).
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 || len(values) == 1 && strings.TrimSpace(values[0]) == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(values) > 1 {
			a.refuse(w, r, errs.E(errs.Unauthenticated, "more than one Authorization header"))
			return
		}
		token, ok := BearerToken(values[0])
		if !ok {
			a.refuse(w, r, errs.E(errs.Unauthenticated, `Authorization header must be "Bearer <token>"`))
			return
		}
		v, err := a.Verify(r.Context(), token)
		if err != nil {
			var e *errs.Error
			if errors.As(err, &e) && e.Code == errs.Unauthenticated {
				a.refuse(w, r, e)
				return
			}
			a.log.ErrorContext(r.Context(), "auth: verifying token", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error", errs.Internal)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithViewer(r.Context(), v)))
	})
}

// Required answers 401 UNAUTHENTICATED to a request that reaches it
// without a verified viewer (put it after Middleware), before next reads
// its body: nothing a client sends is parsed or kept until it is known
// who sent it. exempt(r) lets through requests that authenticate later by
// other means (a WebSocket upgrade, in connection_init) or carry nothing to
// run (OPTIONS).
func Required(exempt func(*http.Request) bool, next http.Handler) http.Handler {
	return required(exempt, next, nil)
}

func required(exempt func(*http.Request) bool, next http.Handler, failed func(*http.Request, *errs.Error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ViewerFrom(r.Context()); ok || exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		const missing = "missing token: send Authorization: Bearer <jwt>"
		if failed != nil {
			failed(r, errs.E(errs.Unauthenticated, missing))
		}
		// RFC 6750 §3.1: a request without credentials gets no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="taskpulse"`)
		writeError(w, http.StatusUnauthorized, missing, errs.Unauthenticated)
	})
}

// Required is the package's Required, telling Options.OnFailure of the
// requests it refuses.
func (a *Authenticator) Required(exempt func(*http.Request) bool, next http.Handler) http.Handler {
	return required(exempt, next, a.failed)
}

// refuse answers 401 for a refused Authorization header.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, e *errs.Error) {
	a.failed(r, e)
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, e.Message, errs.Unauthenticated)
}

// writeError answers in the GraphQL error shape, so clients handle it like
// any other GraphQL error.
func writeError(w http.ResponseWriter, status int, message string, code errs.Code) {
	type extensions struct {
		Code errs.Code `json:"code"`
	}
	type gqlError struct {
		Message    string     `json:"message"`
		Extensions extensions `json:"extensions"`
	}
	body, _ := json.Marshal(struct {
		Errors []gqlError `json:"errors"`
	}{[]gqlError{{Message: message, Extensions: extensions{Code: code}}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
