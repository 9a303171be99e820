package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the signature of a delivery.
const SignatureHeader = "Imgd-Signature"

// EventIDHeader carries the event id, the same in every attempt of one
// event: receivers deduplicate on it.
const EventIDHeader = "Imgd-Event-Id"

// DefaultTolerance is the age a receiver should accept for a signature's
// timestamp: enough for clock skew and a slow network, short enough that a
// captured request cannot be replayed later.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify; test with errors.Is.
var (
	ErrNoSignature        = errors.New("webhook: no signature header or no v1 signature in it")
	ErrMalformedSignature = errors.New("webhook: malformed signature header")
	ErrSignatureMismatch  = errors.New("webhook: no signature matches the body")
	ErrSignatureExpired   = errors.New("webhook: signature timestamp outside the tolerance")
)

// Sign returns the Imgd-Signature header value of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an Imgd-Signature header against the raw request body, as a
// receiver must: one of its v1 values (several may be present while a
// secret is being rotated) is the HMAC of "<t>.<body>" under secret, and t
// is within tolerance of the current time (0 means DefaultTolerance).
// Verify the bytes as received, before any JSON decoding.
func Verify(secret, header string, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformedSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return ErrMalformedSignature
			}
			sigs = append(sigs, sig)
		}
		// Other schemes are ignored, so that a new one can be added beside v1.
	}
	if len(sigs) == 0 {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMalformedSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureExpired
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
