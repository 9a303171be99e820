package httpapi_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	_ "image/png"
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// goodDirs hold the images every operation must handle.
var goodDirs = []string{"photos", "png", "formats", "orientation"}

// opFamily is one kind of operation, as a pipeline and what its result
// must look like.
type opFamily struct {
	name string
	// pipeline is the task's pipeline; most start with a small resize
	// (prefix) so that the whole test stays fast.
	pipeline string
	// size is the expected result size given the prefix's output size,
	// and whether it is exact (else ±1 px, from scaling).
	size func(w, h int) (int, int, bool)
	// format is the result format, "" for the input's default output.
	format imgd.Format
	// pixels, when set, checks the decoded result.
	pixels func(image.Image) error
}

// prefix is the small resize most pipelines start with.
const prefix = `{"op":"resize","width":64}`

var opFamilies = []opFamily{
	{name: "resize", pipeline: `[{"op":"resize","width":40,"height":30,"fit":"fill","enlarge":true}]`,
		size: func(int, int) (int, int, bool) { return 40, 30, true }},
	{name: "crop", pipeline: `[` + prefix + `,{"op":"crop","x":2,"y":1,"width":20,"height":10}]`,
		size: func(int, int) (int, int, bool) { return 20, 10, true }},
	{name: "rotate", pipeline: `[` + prefix + `,{"op":"rotate","angle":90}]`,
		size: func(w, h int) (int, int, bool) { return h, w, false }},
	{name: "flip", pipeline: `[` + prefix + `,{"op":"flip","direction":"both"}]`,
		size: func(w, h int) (int, int, bool) { return w, h, false }},
	{name: "grayscale", pipeline: `[` + prefix + `,{"op":"grayscale"},{"op":"convert","format":"png"}]`,
		size: func(w, h int) (int, int, bool) { return w, h, false }, format: imgd.FormatPNG, pixels: allGray},
	{name: "auto_orient", pipeline: `[{"op":"auto_orient"},` + prefix + `,{"op":"convert","format":"png"}]`,
		size: func(w, h int) (int, int, bool) { return w, h, false }, format: imgd.FormatPNG},
	{name: "dither", pipeline: `[` + prefix + `,{"op":"dither","method":"atkinson","palette":"bw"},{"op":"convert","format":"png"}]`,
		size: func(w, h int) (int, int, bool) { return w, h, false }, format: imgd.FormatPNG, pixels: blackOrWhite},
}

func init() {
	for _, f := range imgd.OutputFormats {
		opFamilies = append(opFamilies, opFamily{name: "convert:" + string(f),
			pipeline: `[` + prefix + `,{"op":"convert","format":"` + string(f) + `"}]`,
			size:     func(w, h int) (int, int, bool) { return w, h, false }, format: f})
	}
}

// defaultOutput is the format a pipeline without convert writes.
func defaultOutput(f imgd.Format) imgd.Format {
	switch f {
	case imgd.FormatHEIC:
		return imgd.FormatJPEG
	case imgd.FormatBMP, imgd.FormatSVG, imgd.FormatJXL:
		return imgd.FormatPNG
	}
	return f
}

// prefixSize is the size after auto-orientation and the 64 px prefix.
// The upright size comes from the file itself where Go can read it (JPEG
// is where EXIF orientation occurs), so that it does not depend on whether
// the API reports width and height before or after orientation.
func prefixSize(t *testing.T, file string, im imgd.Image) (int, int) {
	w, h := im.Width, im.Height
	if im.Format == imgd.FormatJPEG {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(imgtest.Read(t, file)))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		w, h = cfg.Width, cfg.Height
		if im.Orientation >= 5 {
			w, h = h, w
		}
	}
	if w <= 64 && im.Format != imgd.FormatSVG { // no enlarging; SVG is drawn at the size asked
		return w, h
	}
	return 64, int(float64(h)*64/float64(w) + 0.5)
}

func allGray(m image.Image) error {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			if c.A != 0 && (c.R != c.G || c.G != c.B) {
				return fmt.Errorf("pixel (%d,%d) = %v is not gray", x, y, c)
			}
		}
	}
	return nil
}

func blackOrWhite(m image.Image) error {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			if c.A != 0 && !(c.R == 0 && c.G == 0 && c.B == 0) && !(c.R == 255 && c.G == 255 && c.B == 255) {
				return fmt.Errorf("pixel (%d,%d) = %v is neither black nor white", x, y, c)
			}
		}
	}
	return nil
}

// e2eCase is one task of TestEveryGoodFile.
type e2eCase struct {
	file   string
	image  apiImage
	family opFamily
	taskID string
}

func TestEveryGoodFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})

	// Upload everything; group by the format the server found.
	byFormat := map[imgd.Format][]e2eCase{}
	var files []string
	for _, dir := range goodDirs {
		files = append(files, imgtest.Files(t, dir)...)
	}
	for _, f := range files {
		im := e.mustUpload(path.Base(f), imgtest.Read(t, f))
		byFormat[im.Format] = append(byFormat[im.Format], e2eCase{file: f, image: im})
	}
	for _, f := range []imgd.Format{imgd.FormatJPEG, imgd.FormatPNG, imgd.FormatWebP, imgd.FormatAVIF, imgd.FormatHEIC,
		imgd.FormatGIF, imgd.FormatTIFF, imgd.FormatBMP, imgd.FormatSVG} {
		if len(byFormat[f]) == 0 {
			t.Errorf("no good %s file in %v: that format family goes untested", f, goodDirs)
		}
	}

	// Every family on every format, every file at least once.
	var cases []e2eCase
	for _, group := range byFormat {
		for i := range max(len(group), len(opFamilies)) {
			c := group[i%len(group)]
			c.family = opFamilies[i%len(opFamilies)]
			cases = append(cases, c)
		}
	}
	// Orientation: each file upright must look like the untagged one.
	var oriented []e2eCase
	for _, c := range byFormat[imgd.FormatJPEG] {
		if strings.HasPrefix(c.file, "orientation/orientation-") && !strings.Contains(c.file, "camera") {
			c.family = opFamilies[slices.IndexFunc(opFamilies, func(f opFamily) bool { return f.name == "auto_orient" })]
			oriented = append(oriented, c)
		}
	}
	if len(oriented) != 8 {
		t.Fatalf("%d orientation-N.jpg files, want 8", len(oriented))
	}

	var ids []string
	for _, list := range [][]e2eCase{cases, oriented} {
		for i := range list {
			list[i].taskID = e.mustSubmit(list[i].image.ID, list[i].family.pipeline).ID
			ids = append(ids, list[i].taskID)
		}
	}
	tasks := e.waitAll(ids, 120*time.Second)

	covered, pairs := map[string]bool{}, map[string]bool{}
	for _, c := range cases {
		covered[c.file] = true
		pairs[string(c.image.Format)+" "+c.family.name] = true
		name := c.file + " " + c.family.name
		task := tasks[c.taskID]
		if task.Status != imgd.TaskCompleted || task.Result == nil {
			t.Errorf("%s: task %s %s %s", name, task.Status, task.ErrorCode, task.ErrorMessage)
			continue
		}
		checkResult(t, e, name, c, task.Task)
	}
	for _, f := range files {
		if !covered[f] {
			t.Errorf("%s: no task ran on it", f)
		}
	}
	if want := len(byFormat) * len(opFamilies); len(pairs) != want {
		t.Errorf("%d (format, operation) pairs ran, want all %d", len(pairs), want)
	}

	// The upright versions agree with orientation-1 within JPEG noise.
	var ref image.Image
	decoded := map[string]image.Image{}
	for _, c := range oriented {
		task := tasks[c.taskID]
		if task.Status != imgd.TaskCompleted {
			t.Errorf("%s auto_orient: %s %s", c.file, task.Status, task.ErrorMessage)
			continue
		}
		_, data := e.result(c.taskID)
		m, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s auto_orient: decode result: %v", c.file, err)
		}
		decoded[c.file] = m
		if c.file == "orientation/orientation-1.jpg" {
			ref = m
		}
	}
	for f, m := range decoded {
		if d := meanAbsDiff(ref, m); d > 6 {
			t.Errorf("%s upright differs from orientation-1 by %.1f/255 on average, want ≤ 6: wrong orientation", f, d)
		}
	}
}

// meanAbsDiff is the mean absolute difference of the RGB samples of two
// images of equal size, 255 when the sizes differ.
func meanAbsDiff(a, b image.Image) float64 {
	if a == nil || b == nil || a.Bounds().Size() != b.Bounds().Size() {
		return 255
	}
	var sum, n float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			ca := color.NRGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.NRGBA)
			cb := color.NRGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.NRGBA)
			for _, d := range []int{int(ca.R) - int(cb.R), int(ca.G) - int(cb.G), int(ca.B) - int(cb.B)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / n
}

// checkResult checks a completed task's result against its family: format,
// size (as the task says and as the bytes say), frames, and pixels.
func checkResult(t *testing.T, e *env, name string, c e2eCase, task imgd.Task) {
	t.Helper()
	res := task.Result
	wantFormat := c.family.format
	if wantFormat == "" {
		wantFormat = defaultOutput(c.image.Format)
	}
	pw, ph := prefixSize(t, c.file, c.image.Image)
	w, h, exact := c.family.size(pw, ph)
	if res.Format != wantFormat || res.MediaType != wantFormat.MediaType() {
		t.Errorf("%s: result %s %s, want %s", name, res.Format, res.MediaType, wantFormat)
	}
	near := func(got, want int) bool { return got == want || !exact && (got == want-1 || got == want+1) }
	if !near(res.Width, w) || !near(res.Height, h) {
		t.Errorf("%s: result %dx%d, want %dx%d (input %dx%d orientation %d)", name, res.Width, res.Height, w, h,
			c.image.Width, c.image.Height, c.image.Orientation)
	}
	resp, data := e.result(task.ID)
	if int64(len(data)) != res.Bytes || resp.Header.Get("Content-Type") != wantFormat.MediaType() {
		t.Errorf("%s: result download %d bytes %s, task says %d bytes %s", name, len(data),
			resp.Header.Get("Content-Type"), res.Bytes, res.MediaType)
	}
	// Animations stay animated in formats that can hold them.
	wantFrames := 1
	if c.image.Frames > 1 && wantFormat.SupportsAnimation() {
		wantFrames = c.image.Frames
	}

	switch wantFormat {
	case imgd.FormatJPEG, imgd.FormatPNG, imgd.FormatGIF:
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || format != string(wantFormat) || cfg.Width != res.Width || cfg.Height != res.Height {
			t.Errorf("%s: result bytes decode as %q %dx%d (%v), want %s %dx%d", name, format, cfg.Width, cfg.Height,
				err, wantFormat, res.Width, res.Height)
			return
		}
		if wantFormat == imgd.FormatGIF {
			g, err := gif.DecodeAll(bytes.NewReader(data))
			if err != nil || len(g.Image) != wantFrames {
				t.Errorf("%s: result GIF has %d frames (%v), want %d", name, len(g.Image), err, wantFrames)
			}
		}
		if c.family.pixels != nil {
			m, _, err := image.Decode(bytes.NewReader(data))
			if err != nil {
				t.Errorf("%s: decode result: %v", name, err)
			} else if err := c.family.pixels(m); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	default:
		// No decoder in the standard library: the server reads it back.
		magic := map[imgd.Format]func([]byte) bool{
			imgd.FormatWebP: func(b []byte) bool { return len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" },
			imgd.FormatAVIF: func(b []byte) bool {
				return len(b) > 32 && string(b[4:8]) == "ftyp" && bytes.Contains(b[8:32], []byte("avi"))
			},
			imgd.FormatTIFF: func(b []byte) bool {
				return bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*"))
			},
		}[wantFormat]
		if magic == nil || !magic(data) {
			t.Errorf("%s: result does not start like %s: % x", name, wantFormat, data[:min(len(data), 16)])
			return
		}
		resp, b := e.upload("result."+wantFormat.Ext(), data, nil)
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Errorf("%s: uploading the result back = %d %s", name, resp.StatusCode, b)
			return
		}
		back := decode[apiImage](t, b)
		if back.Format != wantFormat || back.Width != res.Width || back.Height != res.Height || back.Frames != wantFrames {
			t.Errorf("%s: result reads back as %s %dx%d %d frames, want %s %dx%d %d frames", name, back.Format,
				back.Width, back.Height, back.Frames, wantFormat, res.Width, res.Height, wantFrames)
		}
	}
}

func TestBadFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	statusOf := map[string]int{"invalid_argument": 400, "too_large": 413, "unsupported_image": 415, "over_limit": 422}

	type accepted struct{ file, want, imageID, taskID string }
	var tasks []accepted
	expect := imgtest.BadExpectations(t)
	for _, f := range imgtest.Files(t, "bad") {
		want := expect[f]
		resp, b := e.upload(path.Base(f), imgtest.Read(t, f), nil)
		if resp.StatusCode == http.StatusCreated {
			im := decode[apiImage](t, b)
			task := e.mustSubmit(im.ID, `[{"op":"resize","width":64}]`)
			tasks = append(tasks, accepted{f, want, im.ID, task.ID})
			continue
		}
		code := errorCode(t, b)
		if want == "ok" || code != want || resp.StatusCode != statusOf[want] {
			t.Errorf("%s: upload refused with %d %s, want %s (%s)", f, resp.StatusCode, code, want, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: refusal has Content-Type %q", f, ct)
		}
	}

	var ids []string
	for _, a := range tasks {
		ids = append(ids, a.taskID)
	}
	final := e.waitAll(ids, 60*time.Second)
	for _, a := range tasks {
		task := final[a.taskID]
		switch {
		case a.want == "ok":
			if task.Status != imgd.TaskCompleted {
				t.Errorf("%s: accepted, task %s %s %s, want completed", a.file, task.Status, task.ErrorCode, task.ErrorMessage)
			}
		case task.Status != imgd.TaskFailed || string(task.ErrorCode) != a.want:
			t.Errorf("%s: accepted, task %s %q (%s), want failed with %s", a.file, task.Status, task.ErrorCode, task.ErrorMessage, a.want)
		default:
			if task.Attempt != 1 {
				t.Errorf("%s: failed after %d attempts, want 1 (a permanent code is not retried)", a.file, task.Attempt)
			}
			resp, b := e.do("GET", "/api/v1/tasks/"+a.taskID+"/result", nil, nil)
			wantError(t, a.file+": GET result", resp, b, http.StatusConflict, "conflict")
		}
		// The original is never served as something a browser would run.
		resp, _ := e.do("GET", "/api/v1/images/"+a.imageID+"/content", nil, nil)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "image/") || strings.Contains(ct, "svg") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: content served as %q, nosniff %q", a.file, ct, resp.Header.Get("X-Content-Type-Options"))
		}
	}

	// The server still works, and deleting what was accepted leaves nothing.
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, b := e.do("GET", p, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s after the bad files = %d %s, want 200", p, resp.StatusCode, b)
		}
	}
	im := e.mustUpload("after.png", imgtest.Read(t, "png/png-gray.png"))
	if task := e.waitTask(e.mustSubmit(im.ID, `[{"op":"resize","width":32}]`).ID, 20*time.Second); task.Status != imgd.TaskCompleted {
		t.Errorf("a good task after the bad files = %s %s", task.Status, task.ErrorMessage)
	}
	for _, id := range append([]string{im.ID}, func() (ids []string) {
		for _, a := range tasks {
			ids = append(ids, a.imageID)
		}
		return ids
	}()...) {
		if resp, b := e.do("DELETE", "/api/v1/images/"+id, nil, nil); resp.StatusCode != http.StatusNoContent {
			t.Errorf("DELETE image %s = %d %s", id, resp.StatusCode, b)
		}
	}
	resp, b := e.do("GET", "/api/v1/images", nil, nil)
	if p := decode[apiPage[apiImage]](t, b); resp.StatusCode != http.StatusOK || len(p.Items) != 0 {
		t.Errorf("images after deleting all = %s, want none", b)
	}
	if files := e.blobFiles(); len(files) != 0 {
		t.Errorf("blob files after deleting all = %v, want none", files)
	}
}
