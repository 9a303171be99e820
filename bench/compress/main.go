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
// -calibrate instead prints the data behind the named levels: per format
// and quality, our SSIM and the Butteraugli distance of every photo (JSON
// lines), then the level targets derived from them (see analyse);
// -analyse FILE derives them again from saved lines.
package main

import (
	"bytes"
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
	flag.StringVar(&o.dir, "dir", envOr("BENCH_DIR", "testdata/photos"), "folder of photos")
	flag.StringVar(&o.work, "out", "bench/out/compress", "folder for outputs")
	flag.IntVar(&o.width, "width", 1600, "resize wider photos to this width first (0: full size)")
	flag.StringVar(&o.level, "level", "high", "compress quality level to compare with q80")
	agree := flag.Bool("agree", false, "measure internal/ssim against scikit-image instead")
	calibrate := flag.Bool("calibrate", false, "print the Butteraugli calibration data instead")
	analyseData := flag.String("analyse", "", "derive the level targets from calibration data saved earlier (JSON lines)")
	flag.Parse()
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
	photos, err := listPhotos(o.dir)
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

func listPhotos(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
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
func (b *bench) encodeAs(ref []byte, refPath string, f imgd.Format, q int) (string, int, error) {
	res, _, err := b.process(ref, fmt.Sprintf(`[{"op":"convert","format":%q,"quality":%d}]`, f, q))
	if err != nil {
		return "", 0, err
	}
	dec := fmt.Sprintf("%s.%s-q%d.png", strings.TrimSuffix(refPath, ".ref.png"), f, q)
	return dec, len(res.Data), b.asPNG(res.Data, dec)
}

func (b *bench) agreement(photos []string) error {
	var pairs [][2]string
	var ours []float64
	for _, photo := range photos {
		refPath, _, err := b.reference(photo)
		if err != nil {
			return err
		}
		ref, err := os.ReadFile(refPath)
		if err != nil {
			return err
		}
		refIm, err := loadSSIM(refPath)
		if err != nil {
			return err
		}
		type enc struct {
			f imgd.Format
			q int
		}
		for _, e := range []enc{{imgd.FormatJPEG, 30}, {imgd.FormatJPEG, 60}, {imgd.FormatJPEG, 90}, {imgd.FormatWebP, 50}} {
			dec, _, err := b.encodeAs(ref, refPath, e.f, e.q)
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

// calibration prints, per format and quality, our SSIM (with the default
// reduction, as compress measures) and the Butteraugli distance, one
// JSON object per line, for docs/compression.md's calibration.
func (b *bench) calibration(photos []string) error {
	grid := map[imgd.Format][]int{
		imgd.FormatJPEG: {50, 60, 70, 80, 90},
		imgd.FormatWebP: {50, 60, 70, 80, 90},
		imgd.FormatAVIF: {35, 45, 55, 65, 75},
	}
	enc := json.NewEncoder(os.Stdout)
	var rows []calRow
	for _, photo := range photos {
		refPath, _, err := b.reference(photo)
		if err != nil {
			return err
		}
		ref, err := os.ReadFile(refPath)
		if err != nil {
			return err
		}
		refIm, err := loadSSIM(refPath)
		if err != nil {
			return err
		}
		for _, f := range []imgd.Format{imgd.FormatJPEG, imgd.FormatWebP, imgd.FormatAVIF} {
			for _, q := range grid[f] {
				dec, size, err := b.encodeAs(ref, refPath, f, q)
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
				r := calRow{Photo: base(photo), Format: f, Quality: q, Bytes: size,
					SSIM: math.Round(s*1e5) / 1e5, Butteraugli: butteraugli(refPath, dec)}
				rows = append(rows, r)
				_ = enc.Encode(r)
			}
		}
	}
	analyse(rows)
	return nil
}

// calRow is one line of the calibration data.
type calRow struct {
	Photo       string      `json:"photo"`
	Format      imgd.Format `json:"format"`
	Quality     int         `json:"quality"`
	Bytes       int         `json:"bytes"`
	SSIM        float64     `json:"ssim"`
	Butteraugli float64     `json:"butteraugli"`
}

// analyse turns calibration rows into per-format SSIM targets. The levels
// are Butteraugli distances: high is the median distance of JPEG q80 over
// the photos (what the replaced service delivered), medium and low 1 and
// 2 further. Per format, a least-squares line through every (photo,
// quality) point relates log(1-SSIM) to log(distance); a level's target is
// that line's SSIM at the level's distance (rounded to 4 decimals).
func analyse(rows []calRow) {
	var q80 []float64
	for _, r := range rows {
		if r.Format == imgd.FormatJPEG && r.Quality == 80 {
			q80 = append(q80, r.Butteraugli)
		}
	}
	if len(q80) == 0 {
		fmt.Println("no JPEG q80 rows: nothing to calibrate")
		return
	}
	high := median(q80)
	formats := []imgd.Format{imgd.FormatJPEG, imgd.FormatWebP, imgd.FormatAVIF}
	fits := map[imgd.Format][2]float64{}
	for _, f := range formats {
		var xs, ys []float64
		for _, r := range rows {
			if r.Format == f && r.Butteraugli > 0 && r.SSIM < 1 {
				xs, ys = append(xs, math.Log(r.Butteraugli)), append(ys, math.Log(1-r.SSIM))
			}
		}
		a, b, r2 := lineFit(xs, ys)
		fits[f] = [2]float64{a, b}
		fmt.Printf("%s: log(1-SSIM) = %.3f + %.3f log(butteraugli), r² %.2f over %d points\n", f, a, b, r2, len(xs))
	}
	fmt.Printf("\n| level | Butteraugli distance | jpeg SSIM target | webp SSIM target | avif SSIM target |\n|---|---:|---:|---:|---:|\n")
	for i, name := range []string{"high", "medium", "low"} {
		d := high + float64(i)
		fmt.Printf("| %s | %.2f |", name, d)
		for _, f := range formats {
			ab := fits[f]
			fmt.Printf(" %.4f |", 1-math.Exp(ab[0]+ab[1]*math.Log(d)))
		}
		fmt.Println()
	}
}

// lineFit is the least-squares line y = a + b x and its r².
func lineFit(xs, ys []float64) (a, b, r2 float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy, syy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
		sxx, sxy, syy = sxx+xs[i]*xs[i], sxy+xs[i]*ys[i], syy+ys[i]*ys[i]
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a = (sy - b*sx) / n
	r := (n*sxy - sx*sy) / math.Sqrt((n*sxx-sx*sx)*(n*syy-sy*sy))
	return a, b, r * r
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// analyseFile re-reads calibration JSON lines.
func analyseFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rows []calRow
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r calRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rows = append(rows, r)
	}
	analyse(rows)
	return nil
}
