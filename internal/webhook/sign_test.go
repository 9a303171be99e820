package webhook

import (
	"errors"
	"testing"
	"time"
)

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	// Computed independently:
	// printf '%s' '1700000000.{"id":"e1"}' | openssl dgst -sha256 -hmac whsec_test
	const want = "t=1700000000,v1=6a85cb117c993612a34c72b4cfb5a16baed25a80d26e298ce0e6671320fd07c8"
	if got := Sign("whsec_test", time.Unix(1700000000, 0), []byte(`{"id":"e1"}`)); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	const secret = "s3cret"
	body := []byte(`{"id":"0192","type":"task.updated"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(secret, now, body)
	other := Sign("old-secret", now, body)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", secret, good, body, now, nil},
		{"valid 4 minutes later", secret, good, body, now.Add(4 * time.Minute), nil},
		{"valid, clock 4 minutes behind", secret, good, body, now.Add(-4 * time.Minute), nil},
		{"rotation: second v1 matches", secret, other + ",v1=" + good[len("t=1800000000,v1="):], body, now, nil},
		{"unknown scheme ignored", secret, good + ",v0=abc", body, now, nil},
		{"wrong secret", "not-the-secret", good, body, now, ErrSignatureMismatch},
		{"tampered body", secret, good, []byte(`{"id":"0193","type":"task.updated"}`), now, ErrSignatureMismatch},
		{"body with a trailing newline", secret, good, append(append([]byte(nil), body...), '\n'), now, ErrSignatureMismatch},
		{"timestamp changed", secret, "t=1800000001" + good[len("t=1800000000"):], body, now, ErrSignatureMismatch},
		{"old timestamp", secret, good, body, now.Add(6 * time.Minute), ErrSignatureExpired},
		{"future timestamp", secret, good, body, now.Add(-6 * time.Minute), ErrSignatureExpired},
		{"empty header", secret, "", body, now, ErrMalformedSignature},
		{"no v1", secret, "t=1800000000", body, now, ErrNoSignature},
		{"no timestamp", secret, good[len("t=1800000000,"):], body, now, ErrMalformedSignature},
		{"v1 not hex", secret, "t=1800000000,v1=zz", body, now, ErrMalformedSignature},
		{"v1 too short", secret, "t=1800000000,v1=abcd", body, now, ErrMalformedSignature},
		{"part without =", secret, good + ",junk", body, now, ErrMalformedSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := verifyAt(tc.secret, tc.header, tc.body, time.Minute*5, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("verifyAt(%q, %q) = %v, want %v", tc.secret, tc.header, err, tc.want)
			}
		})
	}
}

func TestVerifyNow(t *testing.T) {
	t.Parallel()
	body := []byte(`{}`)
	if err := Verify("k", Sign("k", time.Now(), body), body, 0); err != nil {
		t.Errorf("Verify(fresh signature) = %v, want nil", err)
	}
	if err := Verify("k", Sign("k", time.Now().Add(-DefaultTolerance-time.Minute), body), body, 0); !errors.Is(err, ErrSignatureExpired) {
		t.Errorf("Verify(signature older than DefaultTolerance) = %v, want %v", err, ErrSignatureExpired)
	}
	if err := Verify("k", Sign("k", time.Now().Add(-time.Hour), body), body, 2*time.Hour); err != nil {
		t.Errorf("Verify(hour-old signature, tolerance 2h) = %v, want nil", err)
	}
}
