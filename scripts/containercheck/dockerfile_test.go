package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sample = `# a comment
ARG GO_VERSION=1.26.8
FROM golang:${GO_VERSION}-bookworm AS build
RUN apt-get update \
# a comment inside a continuation is dropped
 && apt-get install -y foo
WORKDIR /src
COPY go.mod ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

FROM debian:bookworm-slim
COPY --from=build /out/imgd /usr/local/bin/imgd
ENV A=1 \
    B="two words" C='$A' D=${A}x
ENV E=${NOPE:-dflt} F=${A:+set} G=${A}x
ENV LEGACY value with spaces
USER imgd
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s CMD ["curl", "-f", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["imgd"]
CMD ["serve"]
`

func TestParseDockerfile(t *testing.T) {
	df, err := parseDockerfile(sample)
	if err != nil {
		t.Fatal(err)
	}
	if len(df.globalArgs) != 1 || len(df.stages) != 2 {
		t.Fatalf("got %d global ARGs and %d stages, want 1 and 2", len(df.globalArgs), len(df.stages))
	}
	build := df.stages[0]
	if build.name != "build" || build.from != "golang:${GO_VERSION}-bookworm" {
		t.Errorf("stage 0 = %q FROM %q", build.name, build.from)
	}
	run := build.instrs[0]
	if run.cmd != "RUN" || run.args != "apt-get update  && apt-get install -y foo" || run.line != 4 {
		t.Errorf("continued RUN = line %d %q", run.line, run.args)
	}
	mod := build.instrs[3]
	if len(mod.flags) != 1 || mod.flags[0] != "--mount=type=cache,target=/go/pkg/mod" || mod.args != "go mod download" {
		t.Errorf("RUN --mount: flags %q args %q", mod.flags, mod.args)
	}
}

func TestDryBuildConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(sample)
	if err != nil {
		t.Fatal(err)
	}
	files, err := buildContext(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{contextDir: dir, cacheDir: t.TempDir(), df: df, files: files, dry: true, buildArgs: map[string]string{"GO_VERSION": "1.99.1"}}
	img, err := b.build(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.stages[0].ref != "golang:1.99.1-bookworm" {
		t.Errorf("--build-arg did not override the global ARG: FROM %s", b.stages[0].ref)
	}
	if b.stages[0].config.WorkingDir != "/src" {
		t.Errorf("WORKDIR = %q", b.stages[0].config.WorkingDir)
	}
	c := img.config
	// One ENV line sees the values from before it (D), as Docker's does.
	want := map[string]string{"A": "1", "B": "two words", "C": "$A", "D": "x", "E": "dflt", "F": "set", "G": "1x", "LEGACY": "value with spaces"}
	for k, v := range want {
		if got, _ := c.getenv(k); got != v {
			t.Errorf("ENV %s = %q, want %q", k, got, v)
		}
	}
	if !slices.Equal(c.Entrypoint, []string{"imgd"}) || !slices.Equal(c.Cmd, []string{"serve"}) || c.User != "imgd" {
		t.Errorf("ENTRYPOINT %q CMD %q USER %q", c.Entrypoint, c.Cmd, c.User)
	}
	hc, err := healthcheck(c, "8080", "41234")
	if err != nil || strings.Join(hc, " ") != "curl -f http://127.0.0.1:41234/healthz" {
		t.Errorf("health check with the mapped port = %q, %v", hc, err)
	}
	if c.HealthFlags["timeout"] != "3s" {
		t.Errorf("HEALTHCHECK flags %v", c.HealthFlags)
	}
	over := listenOverrides(imageConfig{Env: []string{"IMGD_ADDR=0.0.0.0:8080", "OTHER=x:8080/y", "IMGD_DATA_DIR=/data"}}, "8080", "41234")
	if len(over) != 1 || over["IMGD_ADDR"] != "127.0.0.1:41234" {
		t.Errorf("listen overrides = %v", over)
	}
}

func TestDryBuildMissingSource(t *testing.T) {
	df, err := parseDockerfile("FROM debian:bookworm\nCOPY missing.txt /x\n")
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{contextDir: t.TempDir(), cacheDir: t.TempDir(), df: df, dry: true}
	if _, err := b.build(t.Context()); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("COPY of a file not in the context: err = %v", err)
	}
}

func TestWords(t *testing.T) {
	env := map[string]string{"X": "ex", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{`a b`, "a|b"},
		{`"a b" c`, "a b|c"},
		{`'$X' "$X" $X ${X}y`, "$X|ex|ex|exy"},
		{`${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${X:+alt} ${UNSET:+alt}z`, "d||d|alt|z"},
		{`a\ b`, "a b"},
	}
	for _, tt := range tests {
		got, err := words(tt.in, mapLookup(env))
		if err != nil || strings.Join(got, "|") != tt.want {
			t.Errorf("words(%q) = %q, %v; want %q", tt.in, strings.Join(got, "|"), err, tt.want)
		}
	}
	if _, err := words(`"open`, mapLookup(env)); err == nil {
		t.Error("unterminated quote: no error")
	}
}

func TestEmulation(t *testing.T) {
	bi, err := emulation("golang:1.26.8-bookworm")
	if err != nil || bi.goVersion != "1.26.8" || bi.suite != "bookworm" || bi.slim {
		t.Errorf("golang: %+v %v", bi, err)
	}
	bi, err = emulation("debian:bookworm-slim")
	if err != nil || bi.suite != "bookworm" || !bi.slim {
		t.Errorf("debian slim: %+v %v", bi, err)
	}
	if _, err := emulation("alpine:3.20"); err == nil {
		t.Error("alpine: want an error, it cannot be emulated with debootstrap")
	}
	if !versionLess("1.26.8", "1.26.10") || versionLess("1.27", "1.26.8") || versionLess("1.26.8", "1.26.8") {
		t.Error("versionLess")
	}
}

func TestCheckDockerfileFindsDefects(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n\ngo 1.27.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(`FROM golang:1.26.8-bookworm AS build
FROM debian:trixie-slim
USER imgd
ENV IMGD_ADDR=127.0.0.1:8080
EXPOSE 8080
HEALTHCHECK CMD ["curl", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["imgd"]
`)
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{contextDir: dir, cacheDir: t.TempDir(), df: df, dry: true}
	img, err := b.build(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	checkDockerfile(&report{out: &out}, dir, b, img)
	for _, want := range []string{
		"IMGD_ADDR=127.0.0.1:8080: a published port cannot reach",
		"HEALTHCHECK [\"curl\" \"http://127.0.0.1:9090/healthz\"] does not ask the container's own port 8080",
		"USER imgd is a name",
		"golang:1.26.8-bookworm is older than go.mod's go 1.27.1",
		"stages on different Debian releases [\"bookworm\" \"trixie\"]",
	} {
		if !strings.Contains(out.String(), "FAIL "+want) {
			t.Errorf("no failure %q in:\n%s", want, out.String())
		}
	}
}
