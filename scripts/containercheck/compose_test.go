package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgd/imgd/internal/imgtest"
)

func TestInterpolate(t *testing.T) {
	got, req := interpolate(`a ${P:-pw} $$HOME ${Q} $R ${S-x}`)
	if got != "a pw $HOME   x" {
		t.Errorf("interpolate = %q", got)
	}
	if strings.Join(req, ",") != "Q,R" {
		t.Errorf("required = %q, want Q,R", req)
	}
}

// A Compose file with one defect of each kind the check looks for.
const brokenCompose = `
x-imgd: &imgd
  build: .
  environment:
    IMGD_DATABASE_URL: postgres://imgd:${POSTGRES_PASSWORD:-one}@db:5432/imgd
    IMGD_BLOB_URL: s3://bucket?endpoint=http://s3:9000&region=us-east-1
    AWS_ACCESS_KEY_ID: key
    AWS_SECRET_ACCESS_KEY: wrong
    IMGD_NO_SUCH_SETTING: "1"
services:
  db:
    image: postgres:17
    environment:
      POSTGRES_USER: imgd
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-two}
      POSTGRES_DB: imgd
  s3:
    image: versity/versitygw:v1.8.0
    command: ["--port", ":7070", "--access", "key", "--secret", "secret", "posix", "/buckets"]
    volumes:
      - undeclared:/buckets
  migrate:
    <<: *imgd
    command: ["migrate"]
    restart: unless-stopped
    depends_on:
      db:
        condition: service_healthy
  api:
    <<: *imgd
    command: ["api"]
    ports: ["8080:9090"]
    depends_on:
      migrate:
        condition: service_completed_successfully
      ghost:
        condition: service_started
`

func TestCheckComposeFindsDefects(t *testing.T) {
	if err := exec.Command(python, "-c", "import yaml").Run(); err != nil {
		imgtest.Unavailable(t, "python3 with PyYAML is not installed (apt-get install python3-yaml; scripts/container-check.sh does)")
	}
	dir := t.TempDir()
	files := map[string]string{
		"docker-compose.yml": brokenCompose,
		"config.go":          `package x; var names = []string{"IMGD_DATABASE_URL", "IMGD_BLOB_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	r := &report{out: &out}
	img := imageConfig{ExposedPorts: []string{"8080"}, Healthcheck: []string{"CMD", "true"}}
	if cf := checkCompose(r, dir, "docker-compose.yml", img); cf == nil {
		t.Fatalf("not parsed:\n%s", out.String())
	}
	for _, want := range []string{
		"${POSTGRES_PASSWORD} has different defaults",
		"api, migrate: sets IMGD_NO_SUCH_SETTING, which no Go source of imgd reads",
		"api publishes container port 9090, the image listens on 8080",
		"api depends on ghost, which is not a service",
		"migrate waits for db to be healthy, but db has no health check",
		"api waits for migrate to complete, but migrate has restart: unless-stopped",
		"api, migrate: IMGD_DATABASE_URL's password is \"one\", service db has POSTGRES_PASSWORD=\"two\"",
		"api, migrate: IMGD_BLOB_URL's endpoint port is 9000, s3 listens on :7070",
		"api, migrate: AWS_SECRET_ACCESS_KEY=\"wrong\", but s3 is started with --secret \"secret\"",
		"s3: imgd needs bucket bucket, and nothing creates /buckets/bucket",
		"api uses the blob store s3 but does not (even indirectly) depend on it",
		"s3 mounts volume undeclared, which is not declared",
	} {
		if !strings.Contains(out.String(), "FAIL "+want) {
			t.Errorf("no failure %q in:\n%s", want, out.String())
		}
	}
	if t.Failed() {
		return
	}
	// The repository's own file passes the same checks.
	root, _ := filepath.Abs("../..")
	var good bytes.Buffer
	r = &report{out: &good}
	img.Healthcheck = []string{"CMD", "curl", "http://127.0.0.1:8080/healthz"}
	checkCompose(r, root, "docker-compose.yml", img)
	if r.fails > 0 {
		t.Errorf("docker-compose.yml:\n%s", good.String())
	}
}
