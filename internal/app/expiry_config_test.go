package app

import (
	"strings"
	"testing"
	"time"
)

// TestPresignNeedsS3: IMGD_BLOB_PRESIGN without S3 blobs is a start-up
// error naming the variable, not a silently ignored setting.
func TestPresignNeedsS3(t *testing.T) {
	t.Parallel()
	_, err := load(t, nil, map[string]string{"IMGD_BLOB_PRESIGN": "15m"})
	if err == nil || !strings.Contains(err.Error(), "IMGD_BLOB_PRESIGN") {
		t.Errorf("resolve(IMGD_BLOB_PRESIGN without IMGD_BLOB_URL) error = %v, want one naming IMGD_BLOB_PRESIGN", err)
	}
	for _, v := range []string{"-1m", "200h", "soon"} {
		_, err := load(t, nil, map[string]string{"IMGD_BLOB_URL": "s3://b", "IMGD_BLOB_PRESIGN": v})
		if err == nil {
			t.Errorf("resolve(IMGD_BLOB_PRESIGN=%s) = nil error, want one (0 up to 168h)", v)
		}
	}
}

// TestResultTTL: IMGD_RESULT_TTL is 0 (keep) by default, a duration
// otherwise, never negative.
func TestResultTTL(t *testing.T) {
	t.Parallel()
	c, err := load(t, []string{"--result-ttl=720h"}, nil)
	if err != nil || c.ResultTTL != 720*time.Hour {
		t.Errorf("resolve(--result-ttl=720h) = %s, %v; want 720h", c.ResultTTL, err)
	}
	if _, err := load(t, nil, map[string]string{"IMGD_RESULT_TTL": "-1h"}); err == nil || !strings.Contains(err.Error(), "IMGD_RESULT_TTL") {
		t.Errorf("resolve(IMGD_RESULT_TTL=-1h) error = %v, want one naming IMGD_RESULT_TTL", err)
	}
}
