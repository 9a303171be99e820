package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/blob/s3test"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/httpapi"
	"github.com/imgd/imgd/internal/metrics"
	"github.com/imgd/imgd/internal/service"
)

// env is a real imgd on a loopback port: SQLite and blobs in a temporary
// data directory, real River workers and libvips.
type env struct {
	t       *testing.T
	URL     string
	DataDir string
	Svc     *service.Service
	Server  *httptest.Server
}

// webhookSecret signs the test servers' webhooks.
const webhookSecret = "test-webhook-secret"

type envOptions struct {
	workers int           // 0 means 2; -1 means no workers (tasks stay pending)
	limits  engine.Limits // zero means engine.DefaultLimits()
	timeout time.Duration // per-task time limit; 0 means the default
	blobURL string        // "" keeps blobs in the data directory; s3://… with s3test's credentials
	presign time.Duration // httpapi.Options.PresignTTL
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.workers == 0 {
		o.workers = 2
	}
	if o.workers < 0 {
		o.workers = 0
	}
	if o.limits == (engine.Limits{}) {
		o.limits = engine.DefaultLimits()
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.WithoutCancel(t.Context())
	svc, err := service.Open(ctx, service.Options{DataDir: dir, Workers: o.workers, TaskTimeout: o.timeout,
		Migrate: true, Limits: o.limits, Logger: log, WebhookSecret: webhookSecret, WebhookAllowPrivate: true,
		BlobURL: o.blobURL, Getenv: s3test.Getenv})
	if err != nil {
		t.Fatalf("service.Open: %v", err)
	}
	m := metrics.New()
	api, err := httpapi.New(httpapi.Options{Store: svc.Store, Blobs: svc.Blobs, Engine: svc.Engine, Hub: svc.Hub,
		Ready: svc.Ready, Metrics: m, Logger: log, OnTaskUpdate: svc.TaskUpdated, WebhookDeliveries: svc.WebhookDeliveries,
		PresignTTL: o.presign})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("service.Start: %v", err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		stop, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := svc.Stop(stop); err != nil {
			t.Errorf("service.Stop: %v", err)
		}
		if err := svc.Close(); err != nil {
			t.Errorf("service.Close: %v", err)
		}
	})
	return &env{t: t, URL: srv.URL, DataDir: dir, Svc: svc, Server: srv}
}

// do sends a request and returns the response with its body read.
func (e *env) do(method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	return fetch(e.t, method, e.URL+path, body, header)
}

// fetch sends a request to url and returns the response with its body
// read, failing the test when it cannot.
func fetch(t *testing.T, method, url string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

// multipartBody returns a multipart form with a "file" part holding data
// under filename, plus the given fields, and its content type.
func multipartBody(t *testing.T, filename string, data []byte, fields map[string]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if filename != "" || data != nil {
		fw, err := mw.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// decode unmarshals a JSON body, failing the test when it is not JSON.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body is not the expected JSON: %v\n%s", err, b)
	}
	return v
}

// errorCode returns the code of an error body, failing when the body is
// not {"error":{"code","message"}} with both set.
func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body {\"error\":{\"code\",\"message\"}}: %s", b)
	}
	return e.Error.Code
}

// blobFiles lists the files of the blob store, to check nothing is left
// behind.
func (e *env) blobFiles() []string {
	e.t.Helper()
	var files []string
	root := filepath.Join(e.DataDir, service.BlobDir)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return files
}

// waitTask polls a task until it is final, failing after timeout.
func (e *env) waitTask(id string, timeout time.Duration) imgd.Task {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, b := e.do("GET", "/api/v1/tasks/"+id, nil, nil)
		if resp.StatusCode != http.StatusOK {
			e.t.Fatalf("GET task %s: %d %s", id, resp.StatusCode, b)
		}
		task := decode[imgd.Task](e.t, b)
		if task.Status.Final() {
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s still %s after %s", id, task.Status, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
