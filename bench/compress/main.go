// Command compress benchmarks imgd's perceptual compression (the compress
// step) against what the replaced service did: one fixed JPEG quality, 80.
// Run it from the module root with `make bench-compress` or
// `go run ./bench/compress` (BENCH_DIR or -dir for other photos).
//
// For every photo (every .jpg, .jpeg, .png, .webp in the folder, sorted):
//   - the reference is the pipeline's pixels before encoding: the photo,
//     resized to -width px wide when it is wider (default 1600, a large web
//     image; -width 0 keeps the full size), written as lossless PNG;
//   - three outputs: convert jpeg q=80; compress format=jpeg quality=high;
//     compress format=auto quality=high (-level medium or low for another
//     level);
//   - each output is decoded to PNG and scored against the reference by
//     tools outside imgd: scikit-image's structural_similarity
//     (ssim_ref.py, on linear-light luma like internal/ssim, and on the
//     usual gamma-encoded Rec. 601 luma) and Butteraugli (Debian's
//     butteraugli, when installed);
//   - the time of each engine run (decode, resize, search, encodes) and
//     the encodes per format that compress reports.
//
// It prints a table per image, totals, and checks the targets of issue 7.
//
// -agree instead measures how closely internal/ssim follows scikit-image:
// every photo against its JPEG (q 30, 60, 90) and WebP (q 50) encodings,
// full resolution (no reduction) on both sides.
//
// -calibrate instead prints the data behind the named levels (JSON lines):
// for every calibration photo, JPEG q80 as the replaced service writes it
// and progressive JPEG at every other quality from 30 to 95, each with its
// size and our SSIM (as compress measures it); then the levels derived
// from them (see analyse). Its photos are not the benchmark's: by default
// the upright photos of testdata/orientation-dev (a folder with a
// labels.tsv contributes its rows of kind photo at angle 0) and, when
// cmd/imgd-train-orientation/fetch.sh has unpacked them, the phone photos
// and wallpaper photographs of its "forensics" and "ukui" sources.
// -analyse FILE derives the levels again from saved lines (with
// -calibrate, and the references of the run that saved them still in the
// work folder, it measures the Butteraugli distances too).
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	_ "image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/ssim"
)

var python = "/usr/bin/python3" // Debian's, where python3-skimage installs

type options struct {
	dir, work, level string
	width            int
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "", "folder of photos (default BENCH_DIR, else testdata/photos; for -calibrate testdata/orientation-dev)")
	flag.StringVar(&o.work, "out", "bench/out/compress", "folder for outputs")
	flag.IntVar(&o.width, "width", 1600, "resize wider photos to this width first (0: full size)")
	flag.StringVar(&o.level, "level", "high", "compress quality level to compare with q80")
	agree := flag.Bool("agree", false, "measure internal/ssim against scikit-image instead")
	calibrate := flag.Bool("calibrate", false, "print the calibration data of the named levels instead")
	analyseData := flag.String("analyse", "", "derive the level targets from calibration data saved earlier (JSON lines)")
	flag.Parse()
	if o.dir == "" {
		o.dir = envOr("BENCH_DIR", "testdata/photos")
		if *calibrate {
			o.dir = "testdata/orientation-dev"
		}
	}
	if *analyseData != "" && *calibrate {
		if err := butteraugliFromFile(o, *analyseData); err != nil {
			fmt.Fprintln(os.Stderr, "bench-compress:", err)
			os.Exit(1)
		}
		return
	}
	if *analyseData != "" {
		if err := analyseFile(*analyseData); err != nil {
			fmt.Fprintln(os.Stderr, "bench-compress:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o, *agree, *calibrate); err != nil {
		fmt.Fprintln(os.Stderr, "bench-compress:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(o options, agree, calibrate bool) error {
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		return err
	}
	list := listPhotos
	if calibrate {
		list = func(string) ([]string, error) { return calibrationPhotos(o) }
	}
	photos, err := list(o.dir)
	if err != nil {
		return err
	}
	b := &bench{o: o, eng: eng}
	switch {
	case agree:
		return b.agreement(photos)
	case calibrate:
		return b.calibration(photos)
	}
	return b.compare(photos)
}

// listPhotos lists the images of dir; when dir has a labels.tsv (the
// orientation sets' format: file, true_angle, kind, …) only its upright
// photos.
func listPhotos(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	upright, err := uprightPhotos(filepath.Join(dir, "labels.tsv"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if upright != nil && !upright[e.Name()] {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png", ".webp":
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no photos in %s", dir)
	}
	return out, nil
}

type bench struct {
	o   options
	eng *engine.Engine
}

// process runs one pipeline and times it.
// calibrationPhotos are the photos of -calibrate: o.dir's and, for the
// default folder, the orientation trainer's cached photographs.
func calibrationPhotos(o options) ([]string, error) {
	photos, err := listPhotos(o.dir)
	if err != nil || o.dir != "testdata/orientation-dev" {
		return photos, err
	}
	more, err := cachedPhotos("cmd/imgd-train-orientation/sources.tsv", "forensics", "ukui")
	return append(photos, more...), err
}

// cachedPhotos lists the files of the named groups of the orientation
// trainer's sources.tsv (group, package, version, globs, licence) under
// its cache (IMGD_ORIENT_CACHE, default ~/.cache/imgd-orient); none when
// the cache is absent.
func cachedPhotos(sources string, groups ...string) ([]string, error) {
	cache := os.Getenv("IMGD_ORIENT_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		cache = filepath.Join(home, ".cache", "imgd-orient")
	}
	data, err := os.ReadFile(sources)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 || !slices.Contains(groups, f[0]) {
			continue
		}
		for _, g := range strings.Split(f[3], ",") {
			m, err := filepath.Glob(filepath.Join(cache, g))
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
		}
	}
	if len(out) == 0 {
		fmt.Fprintf(os.Stderr, "calibration: no cached photos in %s (cmd/imgd-train-orientation/fetch.sh unpacks them): testdata/orientation-dev only\n", cache)
	}
	return out, nil
}

// uprightPhotos reads a labels.tsv: the files of kind photo at angle 0;
// nil when there is no such file.
func uprightPhotos(path string) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		if len(f) >= 3 && f[2] == "photo" {
			if a, err := strconv.ParseFloat(f[1], 64); err == nil && a == 0 {
				keep[f[0]] = true
			}
		}
	}
	return keep, nil
}

func (b *bench) process(src []byte, pipeline string) (*engine.Result, time.Duration, error) {
	p, err := imgd.ParsePipeline([]byte(pipeline))
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	res, err := b.eng.Run(context.Background(), src, p)
	return res, time.Since(start), err
}

// resizeStep is the pipeline prefix that makes the reference.
func (b *bench) resizeStep() string {
	if b.o.width <= 0 {
		return ""
	}
	return fmt.Sprintf(`{"op":"resize","width":%d},`, b.o.width)
}

// reference writes the pixels before encoding as PNG and returns its path.
func (b *bench) reference(photo string) (string, []byte, error) {
	src, err := os.ReadFile(photo)
	if err != nil {
		return "", nil, err
	}
	res, _, err := b.process(src, "["+b.resizeStep()+`{"op":"convert","format":"png"}]`)
	if err != nil {
		return "", nil, fmt.Errorf("%s: reference: %w", photo, err)
	}
	path := filepath.Join(b.o.work, base(photo)+".ref.png")
	return path, src, os.WriteFile(path, res.Data, 0o644)
}

// referencePixels writes the reference of photo like reference and also
// returns its PNG bytes and its pixels.
func (b *bench) referencePixels(photo string) (string, []byte, ssim.Image, error) {
	refPath, _, err := b.reference(photo)
	if err != nil {
		return "", nil, ssim.Image{}, err
	}
	ref, err := os.ReadFile(refPath)
	if err != nil {
		return "", nil, ssim.Image{}, err
	}
	im, err := loadSSIM(refPath)
	return refPath, ref, im, err
}

func base(path string) string { return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) }

// asPNG writes an output decoded to PNG (what the external tools read).
func (b *bench) asPNG(data []byte, path string) error {
	res, _, err := b.process(data, `[{"op":"convert","format":"png"}]`)
	if err != nil {
		return err
	}
	return os.WriteFile(path, res.Data, 0o644)
}

// externalSSIM scores pairs (ref, test) with scikit-image: linear and
// gamma luma per pair.
func externalSSIM(pairs [][2]string) ([][2]float64, error) {
	args := []string{"bench/compress/ssim_ref.py"}
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	out, err := exec.Command(python, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ssim_ref.py (needs Debian python3-skimage): %w", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2*len(pairs) {
		return nil, fmt.Errorf("ssim_ref.py: %d values for %d pairs", len(lines), len(pairs))
	}
	res := make([][2]float64, len(pairs))
	for i := range res {
		for k := range 2 {
			if res[i][k], err = strconv.ParseFloat(lines[2*i+k], 64); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// butteraugli returns the distance, NaN when the tool is missing.
func butteraugli(ref, test string) float64 {
	out, err := exec.Command("butteraugli", ref, test).Output()
	if err != nil {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// variant is one way of encoding a photo.
type variant struct {
	name, pipeline string
}

func (b *bench) variants() []variant {
	r := b.resizeStep()
	return []variant{
		{"jpeg q80", "[" + r + `{"op":"convert","format":"jpeg","quality":80}]`},
		{"imgd jpeg", "[" + r + `{"op":"compress","format":"jpeg","quality":"` + b.o.level + `"}]`},
		{"imgd auto", "[" + r + `{"op":"compress","format":"auto","quality":"` + b.o.level + `"}]`},
	}
}

// measure is one output of one photo.
type measure struct {
	format     imgd.Format
	bytes      int
	took       time.Duration
	ssimLin    float64
	ssimGamma  float64
	butter     float64
	encodes    map[imgd.Format]int
	ourScore   float64
	qualityTag string
}

func (b *bench) compare(photos []string) error {
	vs := b.variants()
	results := make([][]measure, len(photos))
	var pairs [][2]string
	for i, photo := range photos {
		ref, src, err := b.reference(photo)
		if err != nil {
			return err
		}
		for k, v := range vs {
			res, took, err := b.process(src, v.pipeline)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", photo, v.name, err)
			}
			m := measure{format: res.Format, bytes: len(res.Data), took: took, encodes: map[imgd.Format]int{}}
			m.qualityTag, m.ourScore = describe(res)
			if co, ok := res.Outputs["compress"].(map[string]any); ok {
				for _, c := range co["candidates"].([]map[string]any) {
					m.encodes[c["format"].(imgd.Format)] += c["encodes"].(int)
				}
			}
			out := filepath.Join(b.o.work, fmt.Sprintf("%s.%d.%s", base(photo), k, res.Format.Ext()))
			if err := os.WriteFile(out, res.Data, 0o644); err != nil {
				return err
			}
			dec := out + ".png"
			if err := b.asPNG(res.Data, dec); err != nil {
				return err
			}
			m.butter = butteraugli(ref, dec)
			pairs = append(pairs, [2]string{ref, dec})
			results[i] = append(results[i], m)
		}
		fmt.Fprintf(os.Stderr, "%s done\n", base(photo))
	}
	scores, err := externalSSIM(pairs)
	if err != nil {
		return err
	}
	for i := range results {
		for k := range results[i] {
			s := scores[i*len(vs)+k]
			results[i][k].ssimLin, results[i][k].ssimGamma = s[0], s[1]
		}
	}
	printCompare(photos, vs, results, b.o)
	return nil
}

func describe(res *engine.Result) (string, float64) {
	co, ok := res.Outputs["compress"].(map[string]any)
	if !ok {
		return "q80", math.NaN()
	}
	return fmt.Sprintf("q%d", co["quality_used"]), co["score"].(float64)
}

func printCompare(photos []string, vs []variant, rs [][]measure, o options) {
	fmt.Printf("## compress benchmark: %d photos from %s, width %d (0 = full size), level %s\n\n", len(photos), o.dir, o.width, o.level)
	fmt.Println("SSIM by scikit-image (linear-light luma / gamma luma), Butteraugli max-norm distance, time of the whole engine run.")
	fmt.Println()
	fmt.Println("| photo | variant | format | quality | bytes | SSIM lin | SSIM gamma | butteraugli | our SSIM | time | encodes |")
	fmt.Println("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|")
	for i, photo := range photos {
		for k, m := range rs[i] {
			fmt.Printf("| %s | %s | %s | %s | %d | %.4f | %.4f | %.2f | %.4f | %.2fs | %s |\n", base(photo), vs[k].name,
				m.format, m.qualityTag, m.bytes, m.ssimLin, m.ssimGamma, m.butter, m.ourScore, m.took.Seconds(), encodesText(m.encodes))
		}
	}
	fmt.Println()
	fmt.Println("| variant | total bytes | vs q80 | mean SSIM lin | worst SSIM lin | mean SSIM gamma | worst SSIM gamma | mean butteraugli | worst butteraugli | total time | encodes/format |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	type summary struct {
		bytes                                int
		meanLin, worstLin, meanGam, worstGam float64
		meanBut, worstBut, took              float64
		formats                              map[imgd.Format][2]int
	}
	sums := make([]summary, len(vs))
	for k := range vs {
		s := summary{worstLin: 2, worstGam: 2, formats: map[imgd.Format][2]int{}}
		for i := range photos {
			m := rs[i][k]
			s.bytes += m.bytes
			s.meanLin += m.ssimLin / float64(len(photos))
			s.meanGam += m.ssimGamma / float64(len(photos))
			s.meanBut += m.butter / float64(len(photos))
			s.worstLin, s.worstGam = min(s.worstLin, m.ssimLin), min(s.worstGam, m.ssimGamma)
			s.worstBut = math.Max(s.worstBut, m.butter)
			s.took += m.took.Seconds()
			for f, n := range m.encodes {
				c := s.formats[f]
				s.formats[f] = [2]int{c[0] + n, c[1] + 1}
			}
		}
		sums[k] = s
		var per []string
		for _, f := range slices.Sorted(mapKeys(s.formats)) {
			c := s.formats[f]
			per = append(per, fmt.Sprintf("%s %.1f", f, float64(c[0])/float64(c[1])))
		}
		fmt.Printf("| %s | %d | %+.1f %% | %.4f | %.4f | %.4f | %.4f | %.2f | %.2f | %.1fs | %s |\n", vs[k].name, s.bytes,
			100*(float64(s.bytes)/float64(sums[0].bytes)-1), s.meanLin, s.worstLin, s.meanGam, s.worstGam,
			s.meanBut, s.worstBut, s.took, strings.Join(per, ", "))
	}
	fmt.Println()
	check := func(name string, ok bool, detail string) {
		verdict := "MET"
		if !ok {
			verdict = "NOT MET"
		}
		fmt.Printf("- %s: %s (%s)\n", name, verdict, detail)
	}
	q80 := sums[0]
	for k := 1; k < len(vs); k++ {
		s := sums[k]
		check(vs[k].name+" worst-image SSIM >= q80's (linear luma)", s.worstLin >= q80.worstLin,
			fmt.Sprintf("%.4f vs %.4f", s.worstLin, q80.worstLin))
		check(vs[k].name+" mean SSIM >= q80's (linear luma)", s.meanLin >= q80.meanLin,
			fmt.Sprintf("%.4f vs %.4f", s.meanLin, q80.meanLin))
		check(vs[k].name+" worst-image SSIM >= q80's (gamma luma)", s.worstGam >= q80.worstGam,
			fmt.Sprintf("%.4f vs %.4f", s.worstGam, q80.worstGam))
		check(vs[k].name+" mean SSIM >= q80's (gamma luma)", s.meanGam >= q80.meanGam,
			fmt.Sprintf("%.4f vs %.4f", s.meanGam, q80.meanGam))
		want := 15.0
		if k == 2 {
			want = 35
		}
		saved := 100 * (1 - float64(s.bytes)/float64(q80.bytes))
		change := fmt.Sprintf("%.1f %% fewer", saved)
		if saved < 0 {
			change = fmt.Sprintf("%.1f %% more", -saved)
		}
		check(fmt.Sprintf("%s >= %.0f %% fewer bytes", vs[k].name, want), saved >= want, change)
		for f, c := range s.formats {
			avg := float64(c[0]) / float64(c[1])
			check(fmt.Sprintf("%s <= 6 %s encodes on average", vs[k].name, f), avg <= 6, fmt.Sprintf("%.1f", avg))
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func encodesText(m map[imgd.Format]int) string {
	var parts []string
	for _, f := range slices.Sorted(mapKeys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", f, m[f]))
	}
	return strings.Join(parts, ", ")
}

// loadSSIM decodes a PNG written by the bench into internal/ssim's form.
func loadSSIM(path string) (ssim.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ssim.Image{}, err
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return ssim.Image{}, fmt.Errorf("%s: %w", path, err)
	}
	r := src.Bounds()
	im := ssim.Image{W: r.Dx(), H: r.Dy(), Bands: 4, Pix: make([]byte, 0, r.Dx()*r.Dy()*4)}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(src.At(x, y)).(color.NRGBA)
			im.Pix = append(im.Pix, c.R, c.G, c.B, c.A)
		}
	}
	return im, nil
}

// encodeAs encodes src (the reference PNG) with a fixed convert step and
// returns the decoded PNG's path.
func (b *bench) encodeAs(ref []byte, refPath string, f imgd.Format, q int, progressive bool) (string, int, error) {
	res, _, err := b.process(ref, fmt.Sprintf(`[{"op":"convert","format":%q,"quality":%d,"progressive":%v}]`, f, q, progressive))
	if err != nil {
		return "", 0, err
	}
	dec := fmt.Sprintf("%s.%s-q%d.png", strings.TrimSuffix(refPath, ".ref.png"), f, q)
	if progressive {
		dec = strings.TrimSuffix(dec, ".png") + "-progressive.png"
	}
	return dec, len(res.Data), b.asPNG(res.Data, dec)
}

func (b *bench) agreement(photos []string) error {
	var pairs [][2]string
	var ours []float64
	for _, photo := range photos {
		refPath, ref, refIm, err := b.referencePixels(photo)
		if err != nil {
			return err
		}
		type enc struct {
			f imgd.Format
			q int
		}
		for _, e := range []enc{{imgd.FormatJPEG, 30}, {imgd.FormatJPEG, 60}, {imgd.FormatJPEG, 90}, {imgd.FormatWebP, 50}} {
			dec, _, err := b.encodeAs(ref, refPath, e.f, e.q, false)
			if err != nil {
				return err
			}
			im, err := loadSSIM(dec)
			if err != nil {
				return err
			}
			s, err := ssim.SSIM(refIm, im, ssim.Options{MaxPixels: -1})
			if err != nil {
				return err
			}
			pairs, ours = append(pairs, [2]string{refPath, dec}), append(ours, s)
		}
	}
	theirs, err := externalSSIM(pairs)
	if err != nil {
		return err
	}
	fmt.Println("| pair | internal/ssim | scikit-image | difference |")
	fmt.Println("|---|---:|---:|---:|")
	worst := 0.0
	for i, p := range pairs {
		d := ours[i] - theirs[i][0]
		worst = math.Max(worst, math.Abs(d))
		fmt.Printf("| %s | %.6f | %.6f | %+.1e |\n", filepath.Base(p[1]), ours[i], theirs[i][0], d)
	}
	fmt.Printf("\nlargest |difference| over %d pairs: %.1e\n", len(pairs), worst)
	return nil
}

// calibration prints the levels' data, one JSON object per line (see
// the package comment), then analyses it.
func (b *bench) calibration(photos []string) error {
	enc := json.NewEncoder(os.Stdout)
	var rows []calRow
	for _, photo := range photos {
		refPath, ref, refIm, err := b.referencePixels(photo)
		if err != nil {
			return err
		}
		encodings := []struct {
			q           int
			progressive bool
		}{{80, false}}
		for q := 30; q <= 95; q++ {
			encodings = append(encodings, struct {
				q           int
				progressive bool
			}{q, true})
		}
		for _, e := range encodings {
			dec, size, err := b.encodeAs(ref, refPath, imgd.FormatJPEG, e.q, e.progressive)
			if err != nil {
				return err
			}
			im, err := loadSSIM(dec)
			if err != nil {
				return err
			}
			s, err := ssim.SSIM(refIm, im, ssim.Options{})
			if err != nil {
				return err
			}
			r := calRow{Photo: base(photo), Quality: e.q, Progressive: e.progressive, Bytes: size,
				Pixels: refIm.W * refIm.H, SSIM: math.Round(s*1e6) / 1e6}
			rows = append(rows, r)
			_ = enc.Encode(r)
		}
		fmt.Fprintf(os.Stderr, "%s done\n", base(photo))
	}
	return b.butteraugliOfLevels(photos, analyse(rows))
}

// butteraugliOfLevels prints the Butteraugli distances of q80 and of each
// level's choices (choices from analyse; the references must be in the
// work folder).
func (b *bench) butteraugliOfLevels(photos []string, choices map[string]map[string]int) error {
	if choices == nil {
		return nil
	}
	// Butteraugli, an independent perceptual distance, of what each level
	// chose and of q80 (too slow to run on the whole grid).
	fmt.Printf("\n| encoding | mean Butteraugli | worst Butteraugli |\n|---|---:|---:|\n")
	for _, name := range []string{"q80", "high", "medium", "low"} {
		var sum, worst float64
		n := 0
		for _, photo := range photos {
			refPath := filepath.Join(b.o.work, base(photo)+".ref.png")
			ref, err := os.ReadFile(refPath)
			if err != nil {
				return err
			}
			q, progressive := 80, false
			if name != "q80" {
				q, progressive = choices[name][base(photo)], true
			}
			dec, _, err := b.encodeAs(ref, refPath, imgd.FormatJPEG, q, progressive)
			if err != nil {
				return err
			}
			if d := butteraugli(refPath, dec); !math.IsNaN(d) {
				sum, worst, n = sum+d, max(worst, d), n+1
			}
		}
		if n == 0 {
			fmt.Println("(butteraugli is not installed)")
			break
		}
		fmt.Printf("| %s | %.2f | %.2f |\n", name, sum/float64(n), worst)
	}
	return nil
}

// calRow is one line of the calibration data: one JPEG encoding.
type calRow struct {
	Photo       string  `json:"photo"`
	Quality     int     `json:"quality"`
	Progressive bool    `json:"progressive"` // false: the q80 of the replaced service
	Bytes       int     `json:"bytes"`
	Pixels      int     `json:"pixels"`
	SSIM        float64 `json:"ssim"`
}

// analyse derives the levels from calibration rows.
//
// A level's lambda is the exchange rate of compress's trade-off (gain =
// SSIM - bpp/lambda). high's is the smallest whole lambda at which the
// choices it makes (per photo, the progressive JPEG quality of maximum
// gain) have a mean SSIM at least q80's mean SSIM on the same photos plus
// a margin of 0.001 (for the search's tolerance and for photos unlike
// these): as similar as the replaced service on average, in the fewest
// bytes the equal-slope rule can find. medium and low halve it and halve
// it again. A level's floor is the lowest SSIM its own choices reach on
// the calibration photos, rounded down to 3 decimals: it only acts on an
// image harder than any of them. It returns each level's choice of
// quality per photo, nil when no lambda qualifies.
func analyse(rows []calRow) map[string]map[string]int {
	type point struct {
		bpp, ssim float64
		bytes     int
		quality   int
	}
	grid := map[string][]point{}
	q80 := map[string]calRow{}
	for _, r := range rows {
		if !r.Progressive {
			q80[r.Photo] = r
			continue
		}
		grid[r.Photo] = append(grid[r.Photo], point{8 * float64(r.Bytes) / float64(r.Pixels), r.SSIM, r.Bytes, r.Quality})
	}
	var photos []string
	var q80Mean, q80Worst float64 = 0, 1
	q80Bytes := 0
	for p, r := range q80 {
		if len(grid[p]) == 0 {
			continue
		}
		photos = append(photos, p)
		q80Mean += r.SSIM
		q80Worst = min(q80Worst, r.SSIM)
		q80Bytes += r.Bytes
	}
	if len(photos) == 0 {
		fmt.Println("no photo has both q80 and the progressive grid: nothing to calibrate")
		return nil
	}
	q80Mean /= float64(len(photos))
	// choose is the level's outcome at lambda: mean and worst SSIM, total
	// bytes, the quality chosen per photo.
	choose := func(lambda float64) (mean, worst float64, bytes int, chosen map[string]int) {
		worst, chosen = 1, map[string]int{}
		for _, p := range photos {
			best := slices.MaxFunc(grid[p], func(a, b point) int {
				return cmp.Compare(a.ssim-a.bpp/lambda, b.ssim-b.bpp/lambda)
			})
			mean, worst, bytes = mean+best.ssim, min(worst, best.ssim), bytes+best.bytes
			chosen[p] = best.quality
		}
		return mean / float64(len(photos)), worst, bytes, chosen
	}
	fmt.Printf("%d photos; JPEG q80: mean SSIM %.4f, worst %.4f, %d bytes\n\n", len(photos), q80Mean, q80Worst, q80Bytes)
	fmt.Printf("| lambda | mean SSIM | worst SSIM | bytes vs q80 |\n|---:|---:|---:|---:|\n")
	high := 0.0
	for lambda := 5.0; lambda <= 120; lambda++ {
		mean, worst, bytes, _ := choose(lambda)
		if int(lambda)%5 == 0 {
			fmt.Printf("| %.0f | %.4f | %.4f | %+.1f %% |\n", lambda, mean, worst, 100*(float64(bytes)/float64(q80Bytes)-1))
		}
		if high == 0 && mean >= q80Mean+0.001 && worst >= q80Worst {
			high = lambda
		}
	}
	if high == 0 {
		fmt.Println("\nno lambda up to 120 keeps q80's mean and worst SSIM")
		return nil
	}
	// For comparison, one SSIM target for every photo (what an explicit
	// target does): the lowest that keeps the same conditions.
	for t := 0.950; t <= 0.999; t += 0.0005 {
		var mean float64
		worst, bytes := 1.0, 0
		for _, p := range photos {
			pick := slices.MaxFunc(grid[p], func(a, b point) int { return cmp.Compare(a.ssim, b.ssim) })
			for _, pt := range grid[p] { // ordered by quality
				if pt.ssim >= t {
					pick = pt
					break
				}
			}
			mean, worst, bytes = mean+pick.ssim, min(worst, pick.ssim), bytes+pick.bytes
		}
		if mean/float64(len(photos)) >= q80Mean+0.001 && worst >= q80Worst {
			fmt.Printf("\nOne SSIM target for every photo keeps the same conditions from %.4f: mean %.4f, worst %.4f, bytes %+.1f %% vs q80\n",
				t, mean/float64(len(photos)), worst, 100*(float64(bytes)/float64(q80Bytes)-1))
			break
		}
	}
	choices := map[string]map[string]int{}
	fmt.Printf("\n| level | lambda | floor | mean SSIM | worst SSIM | bytes vs q80 |\n|---|---:|---:|---:|---:|---:|\n")
	for i, name := range []string{"high", "medium", "low"} {
		lambda := high / math.Pow(2, float64(i))
		mean, worst, bytes, chosen := choose(lambda)
		fmt.Printf("| %s | %.2f | %.3f | %.4f | %.4f | %+.1f %% |\n", name, lambda, math.Floor(worst*1e3)/1e3, mean, worst,
			100*(float64(bytes)/float64(q80Bytes)-1))
		choices[name] = chosen
	}
	return choices
}

// butteraugliFromFile analyses saved calibration lines, then measures the
// Butteraugli distances of the levels' choices.
func butteraugliFromFile(o options, path string) error {
	rows, err := readCalRows(path)
	if err != nil {
		return err
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		return err
	}
	photos, err := calibrationPhotos(o)
	if err != nil {
		return err
	}
	b := &bench{o: o, eng: eng}
	return b.butteraugliOfLevels(photos, analyse(rows))
}

// analyseFile re-reads calibration JSON lines.
func analyseFile(path string) error {
	rows, err := readCalRows(path)
	if err != nil {
		return err
	}
	analyse(rows)
	return nil
}

func readCalRows(path string) ([]calRow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []calRow
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue // the analysis -calibrate printed after the data
		}
		var r calRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}
