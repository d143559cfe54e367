// Package errs owns taskpulse's one error model: every failure a client can
// see carries a Code, and the GraphQL layer maps it to extensions.code in one
// place. Errors without a Code are internal and are never shown as they are.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Code is the machine-readable class of an error; its value is the wire
// value of GraphQL extensions.code.
type Code string

// The codes of the public contract.
const (
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	NotFound        Code = "NOT_FOUND"
	BadUserInput    Code = "BAD_USER_INPUT"
	RateLimited     Code = "RATE_LIMITED"
	CursorExpired   Code = "CURSOR_EXPIRED"
	Internal        Code = "INTERNAL"
)

// Error is an error a client may see.
type Error struct {
	Code    Code
	Message string
	// RetryAfter is set with RateLimited: how long until a retry can succeed.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// E builds an Error with a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }
