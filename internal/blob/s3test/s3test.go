// Package s3test starts a real S3-compatible server for tests: versitygw
// with its posix backend, on a random loopback port, owned by one test.
//
// The binary is $IMGD_VERSITYGW, else $HOME/.cache/imgd-tools/versitygw
// (what scripts/versitygw.sh installs), else versitygw on PATH. When none
// exists the test is skipped loudly, or fails under IMGD_TEST_REQUIRE_ALL=1
// (imgtest.Unavailable).
//
// Nothing outside tests may import it.
package s3test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd/internal/imgtest"
)

// Credentials of every server started here: the servers listen on loopback
// only and live for one test.
const (
	AccessKeyID     = "imgd-test-access"
	SecretAccessKey = "imgd-test-secret-key"
	// Bucket is the bucket each server starts with.
	Bucket = "imgd-test"
	// Region is the region the servers report.
	Region = "us-east-1"
)

// Getenv serves the credential variables s3blob.ParseURL reads, so tests
// can pass it instead of setting the process environment (which would keep
// them from running in parallel).
func Getenv(name string) string {
	switch name {
	case "AWS_ACCESS_KEY_ID":
		return AccessKeyID
	case "AWS_SECRET_ACCESS_KEY":
		return SecretAccessKey
	}
	return ""
}

// Env returns the credential variables for a child process's environment.
func Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + SecretAccessKey}
}

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the posix backend's root: Dir/BUCKET/OBJECT is a file

	cmd      *exec.Cmd
	stderr   *bytes.Buffer
	stopOnce sync.Once
	exited   chan struct{}
}

// Start starts a server owned by t and returns a blob URL for a fresh key
// prefix in its bucket (credentials: Getenv or Env).
func Start(t testing.TB) string {
	t.Helper()
	return StartServer(t).URL(t)
}

// Binary returns the versitygw executable to use, or "" when there is none.
func Binary() string {
	if p := os.Getenv("IMGD_VERSITYGW"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "imgd-tools", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	return ""
}

// StartServer starts versitygw on a random loopback port with one empty
// bucket, Bucket, and stops it when t ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		imgtest.Unavailable(t, "versitygw not found (IMGD_VERSITYGW, ~/.cache/imgd-tools/versitygw, PATH; install it with scripts/versitygw.sh), S3 blob storage is not tested")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("s3test: versitygw binary: %v", err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	// The port is free when picked but another process may take it before
	// versitygw binds it: retry with a new one.
	var lastErr error
	for range 3 {
		s, err := start(bin, dir)
		if err == nil {
			t.Cleanup(s.Stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("s3test: start versitygw: %v", lastErr)
	return nil
}

func start(bin, dir string) (*Server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://" + addr, Dir: dir, stderr: new(bytes.Buffer), exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", addr, "--access", AccessKeyID, "--secret", SecretAccessKey,
		"--region", Region, "--quiet", "posix", dir)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("versitygw exited at start: %s", strings.TrimSpace(s.stderr.String()))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("versitygw did not listen within 15s")
		}
		time.Sleep(20 * time.Millisecond) // polling a child process's port; nothing to wait on
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Stop kills the server (by its PID) and waits for it; safe to call twice.
// Tests call it early to see how clients behave when S3 is down.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
}

// URL returns a blob URL for a key prefix of its own in the server's
// bucket, named after t so a leftover object points at its test.
func (s *Server) URL(t testing.TB) string {
	return s.URLWithPrefix(Prefix(t))
}

// URLWithPrefix returns the blob URL of prefix ("" for the bucket's root).
func (s *Server) URLWithPrefix(prefix string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {Region}, "path_style": {"true"}}
	u := url.URL{Scheme: "s3", Host: Bucket, Path: "/" + prefix, RawQuery: q.Encode()}
	return u.String()
}

// Prefix returns a key prefix unique to this call, readable as t's name.
func Prefix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return name + "-" + hex.EncodeToString(b[:])
}
