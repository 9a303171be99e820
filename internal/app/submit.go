package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/apiclient"
)

const submitUsage = `Usage: imgd submit [flags] FILE STEP...

Uploads FILE to a running imgd, creates a task with the pipeline STEP...
and, with --wait or --out, follows it and downloads the result.

STEP is a step in short form (resize:w=300, resize:300x200,fit=cover,
rotate:90, convert:webp, dither:method=atkinson,palette=pico8) or the whole
pipeline as one JSON array. Flags may come anywhere:
`

// runSubmit is the client a person uses to try a server: upload, create a
// task, follow its events, download the result.
func runSubmit(ctx context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("imgd submit", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	server := fs.String("server", "", "server URL (default $IMGD_SERVER, else http://$IMGD_ADDR, else http://127.0.0.1:8080)")
	wait := fs.Bool("wait", false, "wait until the task is final and print it")
	out := fs.String("out", "", "write the result to this file (implies --wait)")
	priority := fs.String("priority", "", "interactive, normal or batch")
	webhook := fs.String("webhook", "", "URL to notify when the task is final")
	jsonOut := fs.Bool("json", false, "print the task as JSON")
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, submitUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(flagsFirst(fs, args)); err != nil {
		return exitUsage
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(env.Stderr, "imgd submit: need FILE and at least one STEP")
		fs.Usage()
		return exitUsage
	}
	file := fs.Arg(0)
	p, err := imgd.ParsePipelineText(fs.Args()[1:])
	if err != nil {
		fmt.Fprintf(env.Stderr, "imgd submit: %s\n", imgd.MessageOf(err))
		return exitUsage
	}
	base := *server
	if base == "" {
		base = env.Getenv("IMGD_SERVER")
	}
	if base == "" {
		base = "http://127.0.0.1:8080"
		if a := env.Getenv("IMGD_ADDR"); a != "" {
			base = "http://" + a
		}
	}
	c := apiclient.New(base)

	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(env.Stderr, "imgd submit: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	fail := func(stage string, err error) int {
		fmt.Fprintf(env.Stderr, "imgd submit: %s: %s (%s)\n", stage, imgd.MessageOf(err), imgd.CodeOf(err))
		if imgd.CodeOf(err) == imgd.CodeUnavailable {
			return exitStartup
		}
		return exitFailed
	}
	im, err := c.Upload(ctx, f, filepath.Base(file))
	if err != nil {
		return fail("upload", err)
	}
	fmt.Fprintf(env.Stderr, "uploaded %s: image %s (%s %dx%d, %d bytes)\n", file, im.ID, im.Format, im.Width, im.Height, im.Bytes)
	t, err := c.CreateTask(ctx, apiclient.TaskRequest{ImageID: im.ID, Pipeline: p, Priority: *priority, WebhookURL: *webhook})
	if err != nil {
		return fail("create task", err)
	}
	fmt.Fprintf(env.Stderr, "task %s %s: %s/api/v1/tasks/%s\n", t.ID, t.Status, c.BaseURL, t.ID)
	if *wait || *out != "" {
		if t, err = c.Wait(ctx, t.ID); err != nil {
			return fail("wait", err)
		}
	}
	if *jsonOut {
		b, _ := json.MarshalIndent(t, "", "  ")
		fmt.Fprintln(env.Stdout, string(b))
	} else {
		fmt.Fprintln(env.Stdout, t.ID, t.Status)
	}
	switch {
	case t.Status == imgd.TaskFailed || t.Status == imgd.TaskCanceled:
		fmt.Fprintf(env.Stderr, "task %s %s: %s (%s)\n", t.ID, t.Status, t.ErrorMessage, t.ErrorCode)
		return exitFailed
	case t.Status.HasResult() && t.Result != nil:
		fmt.Fprintf(env.Stderr, "task %s %s: %s %dx%d, %d bytes\n", t.ID, t.Status, t.Result.Format, t.Result.Width, t.Result.Height, t.Result.Bytes)
	}
	if *out != "" {
		if err := download(ctx, c, t.ID, *out); err != nil {
			return fail("download", err)
		}
		fmt.Fprintf(env.Stderr, "wrote %s\n", *out)
	}
	return exitOK
}

// download writes a result atomically: a temporary file renamed into place.
func download(ctx context.Context, c *apiclient.Client, id, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".imgd-submit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := c.Result(ctx, id, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// flagsFirst moves flags (and the values of non-boolean flags) before the
// positional arguments, so that `imgd submit a.jpg resize:w=3 --wait`
// works: the flag package stops at the first positional argument.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // fs.Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); (!ok || !bf.IsBoolFlag()) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(flags, pos...)
}
