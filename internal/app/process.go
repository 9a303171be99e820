package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
)

func newFlagSet(name string, env Env) (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet("imgd "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	vals := map[string]*string{}
	register(fs, vals)
	return fs, vals
}

// processLine is one input's outcome in --json output.
type processLine struct {
	Input   string         `json:"input"`
	Output  string         `json:"output,omitempty"`
	Format  imgd.Format    `json:"format,omitempty"`
	Width   int            `json:"width,omitempty"`
	Height  int            `json:"height,omitempty"`
	Frames  int            `json:"frames,omitempty"`
	Bytes   int            `json:"bytes,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	// Variants are a responsive set's outputs, each written beside the
	// manifest (Output) as imgd.VariantFileName names it.
	Variants []processVariant `json:"variants,omitempty"`
	Error    *lineError       `json:"error,omitempty"`
	err      error            // the full cause, for the debug log
}

type lineError struct {
	Code    imgd.Code `json:"code"`
	Message string    `json:"message"`
}

func runProcess(ctx context.Context, args []string, env Env) int {
	fs, vals := newFlagSet("process", env)
	pipeArg := fs.String("p", "", "pipeline: a JSON array of steps, or @file.json")
	out := fs.String("o", "", "output file (one input; - for stdout) or directory (several inputs); none: results are not written")
	jsonOut := fs.Bool("json", false, "print one JSON object per input on stdout")
	jobs := fs.Int("j", 0, "inputs processed in parallel (default: IMGD_WORKERS, the number of cores)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "Usage: imgd process -p PIPELINE [-o OUT] [--json] [-j N] INPUT...\n\nINPUT may be - for standard input. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "imgd process: "+format+"\n", a...)
		return exitUsage
	}
	c, err := resolve(fs, vals, env.Getenv)
	if err != nil {
		return usageErr("%v", err)
	}
	inputs := fs.Args()
	if *pipeArg == "" {
		return usageErr("-p PIPELINE is required")
	}
	if len(inputs) == 0 {
		return usageErr("no INPUT files")
	}
	pipeJSON := []byte(*pipeArg)
	if name, ok := strings.CutPrefix(*pipeArg, "@"); ok {
		if pipeJSON, err = os.ReadFile(name); err != nil {
			return usageErr("read pipeline: %v", err)
		}
	}
	p, err := imgd.ParsePipeline(pipeJSON)
	if err != nil {
		return usageErr("%s", imgd.MessageOf(err))
	}
	outputs, err := outputPaths(inputs, *out, p)
	if err != nil {
		return usageErr("%v", err)
	}
	if *jobs <= 0 {
		*jobs = c.Workers
	}
	log := newLogger(c, env.Stderr)
	eng, err := engine.New(engine.Options{Limits: c.Limits, Logger: log})
	if err != nil {
		fmt.Fprintf(env.Stderr, "imgd process: %v\n", err)
		return exitStartup
	}

	lines := make([]processLine, len(inputs))
	done := make([]chan struct{}, len(inputs))
	for i := range done {
		done[i] = make(chan struct{})
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(*jobs, len(inputs)) {
		wg.Go(func() {
			for i := range next {
				lines[i] = processOne(ctx, eng, p, inputs[i], outputs[i], env.Stdin, env.Stdout)
				if lines[i].err != nil {
					log.Debug("input failed", "input", inputs[i], "code", lines[i].Error.Code, "err", lines[i].err)
				}
				close(done[i])
			}
		})
	}
	go func() {
		defer close(next)
		for i := range inputs {
			select {
			case next <- i:
			case <-ctx.Done():
				for ; i < len(inputs); i++ {
					lines[i] = processLine{Input: inputs[i], Error: &lineError{Code: imgd.CodeCanceled, Message: "interrupted"}}
					close(done[i])
				}
				return
			}
		}
	}()
	failed := false
	enc := json.NewEncoder(env.Stdout)
	for i := range inputs {
		<-done[i]
		l := lines[i]
		if l.Error != nil {
			failed = true
		}
		switch {
		case *jsonOut:
			_ = enc.Encode(l)
		case l.Error != nil:
			fmt.Fprintf(env.Stderr, "%s: %s: %s\n", l.Input, l.Error.Code, l.Error.Message)
		default:
			dest := l.Output
			if dest == "" {
				dest = "(not written)"
			}
			fmt.Fprintf(env.Stderr, "%s -> %s: %s %dx%d, %d bytes\n", l.Input, dest, l.Format, l.Width, l.Height, l.Bytes)
		}
	}
	wg.Wait()
	if failed {
		return exitFailed
	}
	return exitOK
}

// outputPaths names each input's output file ("" when not written).
func outputPaths(inputs []string, out string, p imgd.Pipeline) ([]string, error) {
	paths := make([]string, len(inputs))
	if out == "" {
		return paths, nil
	}
	st, statErr := os.Stat(out)
	isDir := statErr == nil && st.IsDir()
	if len(inputs) == 1 && !isDir {
		if out != "-" && sameFile(out, inputs[0]) {
			return nil, fmt.Errorf("output %s is the input", out)
		}
		paths[0] = out
		return paths, nil
	}
	if out == "-" {
		return nil, errors.New("-o - takes one input")
	}
	if !isDir {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, fmt.Errorf("output directory: %w", err)
		}
	}
	seen := map[string]string{}
	for i, in := range inputs {
		if in == "-" {
			return nil, errors.New("standard input (-) needs -o FILE")
		}
		base := strings.TrimSuffix(filepath.Base(in), filepath.Ext(in))
		ext := "out"
		if p.Responsive() != nil {
			ext = imgd.FormatJSON.Ext() // the manifest; the variants go beside it
		} else if c := p.Output(); c != nil {
			ext = c.Format.Ext()
		} else if c := p.Compression(); c != nil {
			ext = c.Format.Ext()
			if c.Format == imgd.FormatAuto {
				ext = formatLater
			}
		} else if f := extFormat(in); f != "" {
			ext = engine.DefaultOutput(f).Ext()
		}
		name := filepath.Join(out, base+"."+ext)
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s and %s would both write %s", prev, in, name)
		}
		if sameFile(name, in) {
			return nil, fmt.Errorf("output %s is the input", name)
		}
		seen[name] = in
		paths[i] = name
	}
	return paths, nil
}

// formatLater stands for the extension of an output whose format the run
// chooses (compress format auto); processOne puts the real one in.
const formatLater = "{format}"

// extFormat guesses a format from a file name, only to name outputs before
// the inputs are read; processing always sniffs the bytes.
func extFormat(name string) imgd.Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg":
		return imgd.FormatJPEG
	case ".png":
		return imgd.FormatPNG
	case ".webp":
		return imgd.FormatWebP
	case ".gif":
		return imgd.FormatGIF
	case ".tif", ".tiff":
		return imgd.FormatTIFF
	case ".avif":
		return imgd.FormatAVIF
	case ".heic", ".heif":
		return imgd.FormatHEIC
	case ".bmp":
		return imgd.FormatBMP
	case ".svg":
		return imgd.FormatSVG
	}
	return ""
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func processOne(ctx context.Context, eng *engine.Engine, p imgd.Pipeline, in, out string, stdin io.Reader, stdout io.Writer) processLine {
	l := processLine{Input: in}
	fail := func(err error) processLine {
		l.err = err
		l.Error = &lineError{Code: imgd.CodeOf(err), Message: imgd.MessageOf(err)}
		if l.Error.Code == imgd.CodeInternal {
			l.Error.Message = err.Error() // a local tool may show the cause
		}
		return l
	}
	src, err := readInput(in, eng.Limits().MaxInputBytes, stdin)
	if err != nil {
		return fail(err)
	}
	res, err := eng.Run(ctx, src, p)
	if err != nil {
		return fail(err)
	}
	if name, ok := strings.CutSuffix(out, "."+formatLater); ok {
		out = name + "." + res.Format.Ext()
	}
	if len(res.Variants) > 0 {
		if out == "-" {
			return fail(imgd.Errorf(imgd.CodeInvalidArgument, "a responsive set is several files: -o must name a file or directory"))
		}
		if res.Data, l.Variants, err = writeSet(out, res); err != nil {
			return fail(err)
		}
	}
	if out != "" {
		if err := writeOutput(out, res.Data, stdout); err != nil {
			return fail(err)
		}
	}
	l.Output, l.Format, l.Width, l.Height, l.Frames, l.Bytes = out, res.Format, res.Width, res.Height, res.Frames, len(res.Data)
	if len(res.Outputs) > 0 {
		l.Outputs = res.Outputs
	}
	return l
}

func readInput(name string, limit int64, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	size := int64(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, &imgd.Error{Code: imgd.CodeNotFound, Message: "cannot open input", Err: err}
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, &imgd.Error{Code: imgd.CodeUnavailable, Message: "cannot read input", Err: err}
		}
		if st.IsDir() {
			return nil, imgd.Errorf(imgd.CodeInvalidArgument, "is a directory")
		}
		if st.Size() > limit {
			return nil, imgd.Errorf(imgd.CodeTooLarge, "input is %d bytes, the limit is %d", st.Size(), limit)
		}
		r, size = f, st.Size()
	}
	// Read into a buffer sized from Stat: io.ReadAll's growing and copying
	// cost 0.012 CPU-s per 300 px thumbnail on testdata/photos (0.053 ->
	// 0.041 measured with go run ./bench). ReadFrom grows a buffer with
	// less than bytes.MinRead free before each read, so the room for its
	// last read (that sees EOF) is allocated up front too.
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	b := buf.Bytes()
	if err != nil {
		return nil, &imgd.Error{Code: imgd.CodeUnavailable, Message: "cannot read input", Err: err}
	}
	if int64(len(b)) > limit {
		return nil, imgd.Errorf(imgd.CodeTooLarge, "input is over the %d byte limit", limit)
	}
	return b, nil
}

// writeOutput writes atomically: a temporary file renamed into place.
func writeOutput(name string, data []byte, stdout io.Writer) error {
	if name == "-" {
		_, err := stdout.Write(data)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".imgd-*")
	if err != nil {
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "cannot write output", Err: err}
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "cannot write output", Err: err}
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "cannot write output", Err: err}
	}
	if err := os.Rename(f.Name(), name); err != nil {
		os.Remove(f.Name())
		return &imgd.Error{Code: imgd.CodeUnavailable, Message: "cannot write output", Err: err}
	}
	return nil
}

// processVariant is one variant of a set in --json output.
type processVariant struct {
	imgd.Variant
	Output string `json:"output,omitempty"`
}

// writeSet writes every variant of a responsive set beside out (the
// manifest's file: "photo.json" gives "photo-320w-0.webp", …; nothing when
// out is "") and returns the manifest, which names the variants by file
// name, relative to it.
func writeSet(out string, res *engine.Result) ([]byte, []processVariant, error) {
	base := strings.TrimSuffix(out, filepath.Ext(out))
	vs := make([]imgd.Variant, len(res.Variants))
	lines := make([]processVariant, len(res.Variants))
	for i, v := range res.Variants {
		rv := imgd.Variant{Index: i, Width: v.Width, Height: v.Height, Format: v.Format, Bytes: int64(len(v.Data))}
		if v.Err != nil {
			rv.ErrorCode, rv.ErrorMessage = v.Err.Code, imgd.MessageOf(v.Err)
		} else {
			rv.MediaType = v.Format.MediaType()
			if len(v.Outputs) > 0 {
				o, err := json.Marshal(v.Outputs)
				if err != nil {
					return nil, nil, fmt.Errorf("encode outputs of variant %d: %w", i, err)
				}
				rv.Outputs = o
			}
		}
		vs[i], lines[i] = rv, processVariant{Variant: rv}
		if out == "" || v.Err != nil {
			continue
		}
		lines[i].Output = imgd.VariantFileName(base, rv)
		if err := writeOutput(lines[i].Output, v.Data, nil); err != nil {
			return nil, nil, err
		}
	}
	var outputs json.RawMessage
	if len(res.Outputs) > 0 {
		var err error
		if outputs, err = json.Marshal(res.Outputs); err != nil {
			return nil, nil, fmt.Errorf("encode outputs: %w", err)
		}
	}
	m := imgd.NewManifest(vs, outputs, func(i int) string { return filepath.Base(imgd.VariantFileName(base, vs[i])) })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(data, '\n'), lines, nil
}
