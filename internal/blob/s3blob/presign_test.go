package s3blob

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/s3test"
)

// A presigned URL downloads the blob without credentials, with the media
// type, disposition and caching asked for, honours Range, carries the
// validity asked for, and stops working when tampered with.
func TestPresignGet(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	ctx := t.Context()
	content := bytes.Repeat([]byte("presigned imgd content "), 1000)
	key, _, err := s.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	const disp = `inline; filename="task-1.webp"`
	u, err := s.PresignGet(ctx, key, time.Minute, "image/webp", disp, "private, max-age=60")
	if err != nil {
		t.Fatalf("PresignGet(%s) error: %v", key, err)
	}
	if !strings.HasPrefix(u.String(), srv.Endpoint+"/") {
		t.Errorf("PresignGet URL %s, want it on the endpoint %s", u, srv.Endpoint)
	}

	resp, body := get(t, u.String(), "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
		t.Fatalf("GET presigned URL = %d, %d bytes; want 200 and the %d bytes stored", resp.StatusCode, len(body), len(content))
	}
	for h, want := range map[string]string{"Content-Type": "image/webp", "Content-Disposition": disp, "Cache-Control": "private, max-age=60"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("GET presigned URL: %s = %q, want %q", h, got, want)
		}
	}
	resp, body = get(t, u.String(), "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, content[10:20]) {
		t.Errorf("GET presigned URL with Range bytes=10-19 = %d %q, want 206 %q", resp.StatusCode, body, content[10:20])
	}

	// Changing a signed parameter breaks the signature.
	q := u.Query()
	q.Set("response-content-type", "text/html")
	tampered := *u
	tampered.RawQuery = q.Encode()
	if resp, _ := get(t, tampered.String(), ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET presigned URL with a changed content type = %d, want 403", resp.StatusCode)
	}

	// The validity is S3's to enforce; what is ours is asking for it.
	if got := u.Query().Get("X-Amz-Expires"); got != "60" {
		t.Errorf("presigned URL X-Amz-Expires = %q, want 60 (one minute)", got)
	}
}

func TestPresignGetErrors(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	key := imgd.BlobKey(make([]byte, 32))
	for _, tc := range []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"malformed key", "sha256/../../etc", time.Minute},
		{"zero validity", key, 0},
		{"over SigV4's week", key, MaxPresignTTL + time.Second},
	} {
		if u, err := s.PresignGet(t.Context(), tc.key, tc.ttl, "", "", ""); err == nil {
			t.Errorf("PresignGet(%s: %q, %s) = %s, want an error", tc.name, tc.key, tc.ttl, u)
		}
	}
	// A missing key is signed (nothing is sent to S3); following it is a 404.
	u, err := s.PresignGet(t.Context(), key, time.Minute, "", "", "")
	if err != nil {
		t.Fatalf("PresignGet(missing key) error: %v", err)
	}
	if resp, _ := get(t, u.String(), ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET presigned URL of a missing key = %d, want 404", resp.StatusCode)
	}
}

// RemoveStaleTemps, which the periodic upkeep calls, removes what a crashed
// Put left more than StaleTempAge ago and keeps what is younger.
func TestRemoveStaleTemps(t *testing.T) {
	t.Parallel()
	srv := s3test.StartServer(t)
	s := newStore(t, srv)
	ctx := t.Context()
	for _, name := range []string{"stale", "fresh"} {
		if _, err := s.client.PutObject(ctx, s.bucket, s.tmpPrefix()+name, strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-StaleTempAge - time.Minute)
	if err := os.Chtimes(filepath.Join(srv.Dir, s3test.Bucket, s.tmpPrefix()+"stale"), old, old); err != nil {
		t.Fatal(err)
	}
	s.RemoveStaleTemps(ctx)
	if got := s.list(t, "tmp/"); !slices.Equal(got, []string{"tmp/fresh"}) {
		t.Errorf("temporary objects after RemoveStaleTemps = %v, want [tmp/fresh]", got)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.tmpPrefix()+"fresh", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, rawURL, rng string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", rawURL, err)
	}
	return resp, body
}
