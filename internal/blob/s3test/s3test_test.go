package s3test

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartServer(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	host := strings.TrimPrefix(s.Endpoint, "http://")
	if h, _, err := net.SplitHostPort(host); err != nil || h != "127.0.0.1" {
		t.Errorf("Endpoint = %q, want http://127.0.0.1:PORT", s.Endpoint)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, Bucket)); err != nil || !fi.IsDir() {
		t.Errorf("bucket directory %s: %v", Bucket, err)
	}
	u, err := url.Parse(s.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "s3" || u.Host != Bucket || !strings.HasPrefix(u.Path, "/TestStartServer-") ||
		q.Get("endpoint") != s.Endpoint || q.Get("region") != Region || q.Get("path_style") != "true" {
		t.Errorf("URL = %s, want s3://%s/TestStartServer-…?endpoint=%s&path_style=true&region=%s", u, Bucket, s.Endpoint, Region)
	}
	if a, b := Prefix(t), Prefix(t); a == b {
		t.Errorf("Prefix returned %q twice, want a fresh prefix per call", a)
	}

	s.Stop()
	s.Stop() // a second Stop is harmless
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", host)
	}
}

// Not parallel: it changes the environment.
func TestBinaryLookup(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("HOME", empty)
	t.Setenv("PATH", empty)
	t.Setenv("IMGD_VERSITYGW", "")
	if got := Binary(); got != "" {
		t.Errorf("Binary() with no versitygw anywhere = %q, want \"\"", got)
	}
	cached := filepath.Join(empty, ".cache", "imgd-tools", "versitygw")
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := Binary(); got != cached {
		t.Errorf("Binary() with a cached build = %q, want %q", got, cached)
	}
	t.Setenv("IMGD_VERSITYGW", "/opt/vgw")
	if got := Binary(); got != "/opt/vgw" {
		t.Errorf("Binary() with IMGD_VERSITYGW set = %q, want /opt/vgw", got)
	}
}
