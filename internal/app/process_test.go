package app

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imgd/imgd/internal/imgtest"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// command's workers and logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

// result is what one call of Main did.
type result struct {
	code           int
	stdout, stderr []byte
}

// runMain runs Main in-process with args, a fake environment and stdin.
func runMain(t *testing.T, args []string, env map[string]string, stdin []byte) result {
	t.Helper()
	var stdout, stderr syncBuffer
	code := Main(t.Context(), args, Env{
		Stdin:  bytes.NewReader(stdin),
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
	})
	return result{code: code, stdout: stdout.Bytes(), stderr: stderr.Bytes()}
}

// line is one --json output line.
type line struct {
	Input  string `json:"input"`
	Output string `json:"output"`
	Format string `json:"format"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Frames int    `json:"frames"`
	Bytes  int    `json:"bytes"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func jsonLines(t *testing.T, stdout []byte) []line {
	t.Helper()
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func isWebP(b []byte) bool {
	return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
}

func isPNG(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }

const (
	photoA   = "photos/jpeg-baseline-small.jpg"    // 640x427
	photoB   = "photos/jpeg-progressive-small.jpg" // 640x400
	toWebP   = `[{"op":"resize","width":64},{"op":"convert","format":"webp"}]`
	toPNG    = `[{"op":"resize","width":64},{"op":"convert","format":"png"}]`
	badEmpty = "bad/empty.jpg"
)

func TestMainUsageErrors(t *testing.T) {
	t.Parallel()
	photo := imgtest.Path(t, photoA)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of stderr
	}{
		{"no args", nil, nil, []string{"Usage:", "imgd process"}},
		{"unknown command", []string{"frobnicate"}, nil, []string{`unknown command "frobnicate"`, "Usage:"}},
		{"process without -p", []string{"process", photo}, nil, []string{"-p PIPELINE is required"}},
		{"pipeline not JSON", []string{"process", "-p", "{", photo}, nil, []string{"pipeline: must be a JSON array"}},
		{"pipeline invalid", []string{"process", "-p", `[{"op":"resize","width":-1}]`, photo}, nil, []string{"steps[0].width"}},
		{"pipeline unknown op", []string{"process", "-p", `[{"op":"resize","width":3},{"op":"blur"}]`, photo}, nil,
			[]string{"steps[1].op", `unknown operation "blur"`}},
		{"pipeline file missing", []string{"process", "-p", "@" + filepath.Join(t.TempDir(), "none.json"), photo}, nil,
			[]string{"read pipeline"}},
		{"no inputs", []string{"process", "-p", toWebP}, nil, []string{"no INPUT files"}},
		{"bad env value", []string{"process", "-p", toWebP, photo}, map[string]string{"IMGD_MAX_PIXELS": "-1"},
			[]string{"IMGD_MAX_PIXELS", "must be > 0, got -1"}},
		{"bad env choice", []string{"process", "-p", toWebP, photo}, map[string]string{"IMGD_LOG_LEVEL": "loud"},
			[]string{"IMGD_LOG_LEVEL", `"loud"`}},
		{"bad flag value", []string{"process", "--max-pixels", "lots", "-p", toWebP, photo}, nil,
			[]string{"--max-pixels", `"lots"`}},
		{"bad -j", []string{"process", "-j", "two", "-p", toWebP, photo}, nil, []string{"-j"}},
		{"unknown flag", []string{"process", "--fast", "-p", toWebP, photo}, nil, []string{"fast"}},
		{"-o - with two inputs", []string{"process", "-p", toWebP, "-o", "-", photo, photo}, nil, []string{"-o - takes one input"}},
		{"output is the input", []string{"process", "-p", toWebP, "-o", photo, photo}, nil, []string{"is the input"}},
		{"config with a bad env value", []string{"config"}, map[string]string{"IMGD_MAX_FRAMES": "0"}, []string{"IMGD_MAX_FRAMES"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runMain(t, tc.args, tc.env, nil)
			if r.code != exitUsage {
				t.Errorf("Main(%q) = %d, want %d (stderr %q)", tc.args, r.code, exitUsage, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.stderr), w) {
					t.Errorf("Main(%q) stderr = %q, want it to contain %q", tc.args, r.stderr, w)
				}
			}
			if len(r.stdout) != 0 {
				t.Errorf("Main(%q) stdout = %q, want nothing", tc.args, r.stdout)
			}
		})
	}
}

func TestMainHelpAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "Usage:"},
		{[]string{"--help"}, "Usage:"},
		{[]string{"version"}, "imgd "},
	}
	for _, tc := range tests {
		t.Run(tc.args[0], func(t *testing.T) {
			t.Parallel()
			r := runMain(t, tc.args, nil, nil)
			if r.code != exitOK || !strings.Contains(string(r.stdout), tc.want) {
				t.Errorf("Main(%q) = %d, stdout %q, want %d and stdout containing %q", tc.args, r.code, r.stdout, exitOK, tc.want)
			}
		})
	}
}

func TestProcessJSONToDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inputs := []string{imgtest.Path(t, photoB), imgtest.Path(t, photoA)}
	args := append([]string{"process", "--json", "-p", toWebP, "-o", dir}, inputs...)
	r := runMain(t, args, nil, nil)
	if r.code != exitOK {
		t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
	}
	got := jsonLines(t, r.stdout)
	want := []line{
		{Input: inputs[0], Output: filepath.Join(dir, "jpeg-progressive-small.webp"), Format: "webp", Width: 64, Height: 40, Frames: 1},
		{Input: inputs[1], Output: filepath.Join(dir, "jpeg-baseline-small.webp"), Format: "webp", Width: 64, Height: 43, Frames: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("Main(%q) printed %d JSON lines, want %d:\n%s", args, len(got), len(want), r.stdout)
	}
	for i := range want {
		data, err := os.ReadFile(want[i].Output)
		if err != nil {
			t.Errorf("output of %s: %v", want[i].Input, err)
			continue
		}
		if !isWebP(data) {
			t.Errorf("%s starts % x, want a RIFF/WEBP header", want[i].Output, data[:min(len(data), 12)])
		}
		want[i].Bytes = len(data)
		if got[i].Bytes == 0 {
			t.Errorf("line %d bytes = 0, want the output size", i)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Main(%q) JSON lines mismatch (-want +got):\n%s", args, diff)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("output directory holds %q, want only the %d outputs (no temporary files)", names, len(want))
	}
}

func TestProcessCreatesOutputDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "new", "out")
	args := []string{"process", "-p", toPNG, "-o", dir, imgtest.Path(t, photoA), imgtest.Path(t, photoB)}
	r := runMain(t, args, nil, nil)
	if r.code != exitOK {
		t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
	}
	for _, name := range []string{"jpeg-baseline-small.png", "jpeg-progressive-small.png"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !isPNG(data) {
			t.Errorf("Main(%q) wrote %s: %v, PNG %v; want a PNG file", args, name, err, isPNG(data))
		}
	}
	if len(r.stdout) != 0 {
		t.Errorf("Main(%q) without --json stdout = %q, want nothing", args, r.stdout)
	}
}

func TestProcessPartialFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inputs := []string{imgtest.Path(t, badEmpty), imgtest.Path(t, photoA)}
	args := append([]string{"process", "--json", "-j", "2", "-p", toWebP, "-o", dir}, inputs...)
	r := runMain(t, args, nil, nil)
	if r.code != exitFailed {
		t.Errorf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitFailed, r.stderr)
	}
	got := jsonLines(t, r.stdout)
	if len(got) != 2 {
		t.Fatalf("Main(%q) printed %d JSON lines, want 2:\n%s", args, len(got), r.stdout)
	}
	if l := got[0]; l.Input != inputs[0] || l.Error == nil || l.Error.Code != "unsupported_image" || l.Output != "" || l.Bytes != 0 {
		t.Errorf("Main(%q) line 0 = %+v, want input %s with error.code unsupported_image and no output", args, l, inputs[0])
	}
	if got[0].Error != nil && got[0].Error.Message == "" {
		t.Errorf("Main(%q) line 0 error message is empty", args)
	}
	if l := got[1]; l.Input != inputs[1] || l.Error != nil || l.Format != "webp" || l.Bytes == 0 {
		t.Errorf("Main(%q) line 1 = %+v, want %s converted to webp", args, l, inputs[1])
	}
	if _, err := os.Stat(filepath.Join(dir, "empty.webp")); !os.IsNotExist(err) {
		t.Errorf("output for the failed input: Stat = %v, want it not to exist", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "jpeg-baseline-small.webp")); err != nil || !isWebP(data) {
		t.Errorf("output for the good input: %v, WebP %v, want a WebP file", err, isWebP(data))
	}
}

func TestProcessFailureWithoutJSON(t *testing.T) {
	t.Parallel()
	in := imgtest.Path(t, badEmpty)
	args := []string{"process", "-p", toWebP, in}
	r := runMain(t, args, nil, nil)
	if r.code != exitFailed {
		t.Errorf("Main(%q) = %d, want %d", args, r.code, exitFailed)
	}
	if want := in + ": unsupported_image: "; !strings.Contains(string(r.stderr), want) {
		t.Errorf("Main(%q) stderr = %q, want it to contain %q", args, r.stderr, want)
	}
}

func TestProcessOutputFile(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "small.png")
	in := imgtest.Path(t, photoA)
	args := []string{"process", "-p", toPNG, "-o", out, in}
	r := runMain(t, args, nil, nil)
	if r.code != exitOK {
		t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil || !isPNG(data) {
		t.Fatalf("Main(%q) output: %v, PNG %v; want a PNG file", args, err, isPNG(data))
	}
	if want := in + " -> " + out + ": png 64x43, " + strconv.Itoa(len(data)) + " bytes"; !strings.Contains(string(r.stderr), want) {
		t.Errorf("Main(%q) stderr = %q, want it to contain %q", args, r.stderr, want)
	}
	if len(r.stdout) != 0 {
		t.Errorf("Main(%q) stdout = %q, want nothing", args, r.stdout)
	}
}

func TestProcessToStdout(t *testing.T) {
	t.Parallel()
	in := imgtest.Path(t, photoA)
	args := []string{"process", "-p", toWebP, "-o", "-", in}
	r := runMain(t, args, nil, nil)
	if r.code != exitOK {
		t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
	}
	if !isWebP(r.stdout) {
		t.Fatalf("Main(%q) stdout starts % x, want a RIFF/WEBP header", args, r.stdout[:min(len(r.stdout), 12)])
	}
	// The same pipeline written to a file gives the same bytes.
	out := filepath.Join(t.TempDir(), "a.webp")
	args2 := []string{"process", "-p", toWebP, "-o", out, in}
	if r2 := runMain(t, args2, nil, nil); r2.code != exitOK {
		t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args2, r2.code, exitOK, r2.stderr)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.stdout, file) {
		t.Errorf("Main(%q) stdout (%d bytes) differs from the file written by Main(%q) (%d bytes)", args, len(r.stdout), args2, len(file))
	}
}

func TestProcessFromStdin(t *testing.T) {
	t.Parallel()
	args := []string{"process", "--json", "-p", toPNG, "-"}
	r := runMain(t, args, nil, imgtest.Read(t, photoA))
	if r.code != exitOK {
		t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
	}
	got := jsonLines(t, r.stdout)
	want := []line{{Input: "-", Format: "png", Width: 64, Height: 43, Frames: 1}}
	if len(got) != 1 {
		t.Fatalf("Main(%q) printed %d JSON lines, want 1:\n%s", args, len(got), r.stdout)
	}
	if got[0].Bytes == 0 {
		t.Errorf("Main(%q) line 0 bytes = 0, want the encoded size", args)
	}
	want[0].Bytes = got[0].Bytes // not written; the size is the encoder's business
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Main(%q) JSON lines mismatch (-want +got):\n%s", args, diff)
	}
}

func TestProcessInputLimit(t *testing.T) {
	t.Parallel()
	in := imgtest.Path(t, photoA) // 16718 bytes
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode string // "" for success
	}{
		{"env limit", []string{"--max-input-bytes=16717"}, nil, "too_large"},
		{"env limit below", nil, map[string]string{"IMGD_MAX_INPUT_BYTES": "1000"}, "too_large"},
		{"env limit with suffix", nil, map[string]string{"IMGD_MAX_INPUT_BYTES": "16KB"}, "too_large"},
		{"exactly the limit", nil, map[string]string{"IMGD_MAX_INPUT_BYTES": "16718"}, ""},
		{"flag wins over env", []string{"--max-input-bytes", "50MiB"}, map[string]string{"IMGD_MAX_INPUT_BYTES": "10"}, ""},
		{"flag wins over env, lower", []string{"--max-input-bytes", "10"}, map[string]string{"IMGD_MAX_INPUT_BYTES": "50MiB"}, "too_large"},
		{"pixel limit", []string{"--max-pixels", "1000"}, nil, "over_limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"process"}, tc.args...), "--json", "-p", toWebP, in)
			r := runMain(t, args, tc.env, nil)
			lines := jsonLines(t, r.stdout)
			if len(lines) != 1 {
				t.Fatalf("Main(%q) printed %d JSON lines, want 1; stderr:\n%s", args, len(lines), r.stderr)
			}
			var gotCode string
			if lines[0].Error != nil {
				gotCode = lines[0].Error.Code
			}
			wantExit := exitOK
			if tc.wantCode != "" {
				wantExit = exitFailed
			}
			if gotCode != tc.wantCode || r.code != wantExit {
				t.Errorf("Main(%q) with env %v = %d, error code %q, want %d, %q", args, tc.env, r.code, gotCode, wantExit, tc.wantCode)
			}
		})
	}
}

func TestProcessParallelSameOutput(t *testing.T) {
	t.Parallel()
	inputs := []string{
		imgtest.Path(t, photoA), imgtest.Path(t, photoB), imgtest.Path(t, "photos/jpeg-gray.jpg"),
		imgtest.Path(t, "photos/jpeg-icc.jpg"), imgtest.Path(t, "png/png-rgba-icon.png"), imgtest.Path(t, "png/png-palette-trns.png"),
	}
	outputs := map[string]map[string][]byte{}
	for _, j := range []string{"1", "2"} {
		dir := t.TempDir()
		args := append([]string{"process", "-j", j, "-p", toWebP, "-o", dir}, inputs...)
		if r := runMain(t, args, nil, nil); r.code != exitOK {
			t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
		if len(files) != len(inputs) {
			t.Errorf("Main(%q) wrote %d files, want %d", args, len(files), len(inputs))
		}
		outputs[j] = files
	}
	for name, one := range outputs["1"] {
		if two, ok := outputs["2"][name]; !ok || !bytes.Equal(one, two) {
			t.Errorf("%s with -j 2: %d bytes (written %v), want the %d bytes of -j 1", name, len(two), ok, len(one))
		}
	}
}

func TestConfigCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want map[string]string // lines that must appear, by variable
	}{
		{"defaults", nil, nil, map[string]string{
			"IMGD_MAX_INPUT_BYTES": "52428800", "IMGD_MAX_PIXELS": "100000000", "IMGD_MAX_FRAMES": "1000",
			"IMGD_MAX_OUTPUT_DIMENSION": "16384", "IMGD_DECODE_STRICTNESS": "warning", "IMGD_LOG_LEVEL": "info",
			"IMGD_LOG_FORMAT": "auto", "IMGD_WORKERS": strconv.Itoa(defaultConfig().Workers),
		}},
		{"env", nil, map[string]string{"IMGD_MAX_PIXELS": "5", "IMGD_MAX_INPUT_BYTES": "1KiB"},
			map[string]string{"IMGD_MAX_PIXELS": "5", "IMGD_MAX_INPUT_BYTES": "1024"}},
		{"flag over env", []string{"--max-pixels=7", "--log-format", "json"}, map[string]string{"IMGD_MAX_PIXELS": "5"},
			map[string]string{"IMGD_MAX_PIXELS": "7", "IMGD_LOG_FORMAT": "json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"config"}, tc.args...)
			r := runMain(t, args, tc.env, nil)
			if r.code != exitOK {
				t.Fatalf("Main(%q) = %d, want %d; stderr:\n%s", args, r.code, exitOK, r.stderr)
			}
			got := map[string]string{}
			for _, l := range strings.Split(strings.TrimSuffix(string(r.stdout), "\n"), "\n") {
				k, v, ok := strings.Cut(l, "=")
				if !ok || !strings.HasPrefix(k, "IMGD_") {
					t.Errorf("Main(%q) printed %q, want IMGD_NAME=value lines only", args, l)
				}
				got[k] = v
			}
			for _, s := range settings {
				if _, ok := got[s.env]; !ok {
					t.Errorf("Main(%q) stdout = %q, want a line for %s", args, r.stdout, s.env)
				}
			}
			if len(got) != len(settings) {
				t.Errorf("Main(%q) printed %d variables, want %d (one per setting)", args, len(got), len(settings))
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("Main(%q) with env %v printed %s=%q, want %q", args, tc.env, k, got[k], v)
				}
			}
		})
	}
}

var _ io.Writer = (*syncBuffer)(nil)

// TestProcessCompressAutoExtension: with compress format auto the output
// file is named after the format the run chose.
func TestProcessCompressAutoExtension(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inputs := []string{imgtest.Path(t, "png/png-rgba-icon.png"), imgtest.Path(t, photoA)}
	args := append([]string{"process", "--json", "-p", `[{"op":"resize","width":96},{"op":"compress"}]`, "-o", dir}, inputs...)
	r := runMain(t, args, nil, nil)
	if r.code != exitOK {
		t.Fatalf("Main(%q) = %d; stderr:\n%s", args, r.code, r.stderr)
	}
	for _, l := range jsonLines(t, r.stdout) {
		ext := map[string]string{"jpeg": ".jpg", "webp": ".webp", "avif": ".avif", "png": ".png"}[l.Format]
		if ext == "" || filepath.Ext(l.Output) != ext {
			t.Errorf("%s: written to %s as %q", l.Input, l.Output, l.Format)
		}
		if data, err := os.ReadFile(l.Output); err != nil || len(data) != l.Bytes {
			t.Errorf("%s: %d bytes on disk (%v), line says %d", l.Output, len(data), err, l.Bytes)
		}
	}
}
