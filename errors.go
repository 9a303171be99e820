package imgd

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class. Codes are stored in
// tasks.error_code and sent to clients, so existing values never change.
type Code string

const (
	CodeInvalidArgument Code = "invalid_argument"  // bad parameters or pipeline
	CodeNotFound        Code = "not_found"         // unknown id
	CodeNotReady        Code = "not_ready"         // result not available yet
	CodeConflict        Code = "conflict"          // not allowed in the current state (e.g. canceling a completed task)
	CodeTooLarge        Code = "too_large"         // input bytes over the limit
	CodeUnsupported     Code = "unsupported_image" // unknown or undecodable image
	CodeOverLimit       Code = "over_limit"        // pixels, frames or output size over a limit
	CodeRateLimited     Code = "rate_limited"
	CodeUnavailable     Code = "unavailable" // a dependency is down: retry
	CodeCanceled        Code = "canceled"    // the work was canceled or timed out
	CodeExpired         Code = "expired"     // a task's result was deleted after its time to live
	CodeInternal        Code = "internal"
)

// Permanent reports whether retrying the same work can never succeed.
func (c Code) Permanent() bool {
	switch c {
	case CodeInvalidArgument, CodeNotFound, CodeTooLarge, CodeUnsupported, CodeOverLimit:
		return true
	}
	return false
}

// Error is the error type every layer returns for a failure a client may see.
type Error struct {
	Code    Code
	Message string // safe to show a client
	Field   string // the offending input, e.g. "steps[1].quality"
	Err     error  // cause, for logs only
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, msg, e.Err)
	}
	return string(e.Code) + ": " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with code and message whose cause is err.
func WrapError(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// MessageOf returns the client-safe message of err ("internal error" unless
// err carries an *Error), prefixed with the offending field when there is one.
func MessageOf(err error) string {
	if err == nil {
		return ""
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return "internal error"
	}
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}
