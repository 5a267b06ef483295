// Package model holds the domain types shared by every layer. gqlgen binds the GraphQL schema
// to them directly, so there is no conversion layer between the API and the store. It imports
// the standard library only.
package model

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrorCode is a machine-readable error class; clients read it in extensions.code.
type ErrorCode string

// The error codes of the API.
const (
	CodeNotFound        ErrorCode = "NOT_FOUND"
	CodeBadUserInput    ErrorCode = "BAD_USER_INPUT"
	CodeUnauthenticated ErrorCode = "UNAUTHENTICATED"
	CodeForbidden       ErrorCode = "FORBIDDEN"
	CodeConflict        ErrorCode = "CONFLICT"
	CodeOutOfStock      ErrorCode = "OUT_OF_STOCK"
	CodeRateLimited     ErrorCode = "RATE_LIMITED"
	// CodeUnavailable: the server could not answer in time (a database or engine too busy,
	// a request past its deadline); the same request may succeed when retried.
	CodeUnavailable ErrorCode = "UNAVAILABLE"
	CodeInternal    ErrorCode = "INTERNAL"
)

// Error is the one error type that reaches clients. Its message is written for them; anything
// internal stays in the wrapped error chain and the logs.
type Error struct {
	Code    ErrorCode
	Message string
	// Argument is the dotted path of the offending argument ("input.price"), if any.
	Argument string
	// RetryAfter, when set, is how long until the request may succeed (extensions.retryAfter).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Argument != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Argument)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidArgument returns a BAD_USER_INPUT error about the argument at path.
func InvalidArgument(path, format string, args ...any) *Error {
	return &Error{Code: CodeBadUserInput, Message: fmt.Sprintf(format, args...), Argument: path}
}

// NotFound returns a NOT_FOUND error about one kind of object.
func NotFound(kind string) *Error {
	return &Error{Code: CodeNotFound, Message: strings.ToLower(kind) + " not found"}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, and INTERNAL for any other
// non-nil error.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
