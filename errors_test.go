package imgd_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/imgd/imgd"
)

func TestCodeOf(t *testing.T) {
	t.Parallel()
	notFound := &imgd.Error{Code: imgd.CodeNotFound, Message: "no such task"}
	tests := []struct {
		name string
		err  error
		want imgd.Code
	}{
		{"nil", nil, ""},
		{"plain error", errors.New("disk on fire"), imgd.CodeInternal},
		{"io.EOF", io.EOF, imgd.CodeInternal},
		{"plain error wrapped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), imgd.CodeInternal},
		{"*Error", notFound, imgd.CodeNotFound},
		{"wrapped with %w", fmt.Errorf("get task %s: %w", "t1", notFound), imgd.CodeNotFound},
		{"wrapped twice", fmt.Errorf("handler: %w", fmt.Errorf("store: %w", notFound)), imgd.CodeNotFound},
		{"wrapped with %v loses the code", fmt.Errorf("store: %v", notFound), imgd.CodeInternal},
		{"joined", errors.Join(errors.New("cleanup failed"), notFound), imgd.CodeNotFound},
		{"Errorf", imgd.Errorf(imgd.CodeTooLarge, "input is %d bytes", 10), imgd.CodeTooLarge},
		{"WrapError", imgd.WrapError(imgd.CodeUnavailable, io.EOF, "storage is down"), imgd.CodeUnavailable},
		{"outermost *Error wins", &imgd.Error{Code: imgd.CodeOverLimit, Message: "m", Err: notFound}, imgd.CodeOverLimit},
		{"empty code", &imgd.Error{Message: "m"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := imgd.CodeOf(tc.err); got != tc.want {
				t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestMessageOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain error hides its text", errors.New("dial tcp 10.0.0.7:5432: password authentication failed"), "internal error"},
		{"plain error wrapped", fmt.Errorf("store: %w", errors.New("secret")), "internal error"},
		{"message", imgd.Errorf(imgd.CodeNotFound, "no task %s", "t1"), "no task t1"},
		{"field prefix", &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "steps[1].quality", Message: "must be 1..100, got 101"},
			"steps[1].quality: must be 1..100, got 101"},
		{"cause hidden", imgd.WrapError(imgd.CodeUnavailable, errors.New("s3: secret-key AKIA… rejected"), "storage is unavailable"),
			"storage is unavailable"},
		{"wrapped *Error", fmt.Errorf("worker: %w", &imgd.Error{Code: imgd.CodeTooLarge, Field: "file", Message: "over 50 MiB"}),
			"file: over 50 MiB"},
		{"outermost *Error wins", &imgd.Error{Code: imgd.CodeOverLimit, Message: "outer", Err: imgd.Errorf(imgd.CodeNotFound, "inner")},
			"outer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := imgd.MessageOf(tc.err); got != tc.want {
				t.Errorf("MessageOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	cause := errors.New("vips_jpegload: premature end of file")
	tests := []struct {
		name string
		err  *imgd.Error
		want string
	}{
		{"message", &imgd.Error{Code: imgd.CodeNotFound, Message: "no such task"}, "not_found: no such task"},
		{"field", &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "steps[0].width", Message: "must be 0..100000, got -1"},
			"invalid_argument: steps[0].width: must be 0..100000, got -1"},
		{"cause", &imgd.Error{Code: imgd.CodeUnsupported, Message: "cannot decode", Err: cause},
			"unsupported_image: cannot decode: vips_jpegload: premature end of file"},
		{"field and cause", &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "pipeline", Message: "bad", Err: cause},
			"invalid_argument: pipeline: bad: vips_jpegload: premature end of file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("(%#v).Error() = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	t.Parallel()
	cause := io.ErrUnexpectedEOF
	err := fmt.Errorf("load: %w", imgd.WrapError(imgd.CodeUnsupported, cause, "truncated image"))
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, io.ErrUnexpectedEOF) = false, want true", err)
	}
	if got := imgd.MessageOf(err); strings.Contains(got, cause.Error()) {
		t.Errorf("MessageOf(%v) = %q, want it not to show the cause", err, got)
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code imgd.Code
		want bool
	}{
		{imgd.CodeInvalidArgument, true},
		{imgd.CodeNotFound, true},
		{imgd.CodeTooLarge, true},
		{imgd.CodeUnsupported, true},
		{imgd.CodeOverLimit, true},
		{imgd.CodeNotReady, false},
		{imgd.CodeRateLimited, false},
		{imgd.CodeUnavailable, false},
		{imgd.CodeCanceled, false},
		{imgd.CodeInternal, false},
		{"", false},
		{"no_such_code", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.code), func(t *testing.T) {
			t.Parallel()
			if got := tc.code.Permanent(); got != tc.want {
				t.Errorf("Code(%q).Permanent() = %v, want %v", tc.code, got, tc.want)
			}
		})
	}
}

// TestCodeValues pins the stored and transmitted spelling of every code.
func TestCodeValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code imgd.Code
		want string
	}{
		{imgd.CodeInvalidArgument, "invalid_argument"},
		{imgd.CodeNotFound, "not_found"},
		{imgd.CodeNotReady, "not_ready"},
		{imgd.CodeTooLarge, "too_large"},
		{imgd.CodeUnsupported, "unsupported_image"},
		{imgd.CodeOverLimit, "over_limit"},
		{imgd.CodeRateLimited, "rate_limited"},
		{imgd.CodeUnavailable, "unavailable"},
		{imgd.CodeCanceled, "canceled"},
		{imgd.CodeExpired, "expired"},
		{imgd.CodeInternal, "internal"},
	}
	for _, tc := range tests {
		if string(tc.code) != tc.want {
			t.Errorf("Code %q, want %q", tc.code, tc.want)
		}
	}
}
