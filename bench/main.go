// Command bench compares the CPU time, speed and memory of `imgd process` with vipsthumbnail
// and Pillow on the same photos, and prints markdown tables for the README. Run it from the
// module root with `make bench` or `go run ./bench` (after `go build -o bin/imgd ./cmd/imgd`).
//
// Method:
//   - Inputs: every .jpg/.jpeg in testdata/photos (or -dir, or $BENCH_DIR), sorted by name.
//     Every tool gets the same files in the same order; each file is read once before any
//     timing so that all tools find them in the page cache.
//   - Each tool runs as ONE child process over all the files, like a batch job, so process
//     start-up (exec, dynamic linking, Python imports, vips_init) is paid once per batch and
//     is part of the cost. There is no warm-up run.
//   - Each (workload, tool) pair runs -runs times (default 5). Runs are interleaved in rounds
//     and the tool order rotates each round, so slow drift of the machine (thermal, noisy
//     neighbours) does not fall on one tool.
//   - Measures come from the kernel, not from the tools: wall time around fork/exec/wait, and
//     the child's rusage from wait4 (os.ProcessState.SysUsage): user+system CPU seconds and
//     maximum resident set size. Tables show the median run for times (with the CPU range
//     over all runs, to judge noise) and the largest RSS of any run.
//   - imgd runs with -j 1 and every child gets VIPS_CONCURRENCY=1 (-vips-concurrency), so CPU
//     per image compares single-threaded work; parallel speed-up is a separate question.
//   - Outputs go to bench/out/ (gitignored); after every run the harness checks that each
//     input produced one output of the right format (and after the first run, with vipsheader,
//     that thumbnails are 300 px wide), so a tool cannot look fast by failing. A tool that
//     exits non-zero stops the benchmark.
//   - The tools do not do identical work, and the tables do not hide it: libvips (imgd,
//     vipsthumbnail) converts CMYK and ICC-tagged inputs to sRGB and resizes with Lanczos3;
//     Pillow ignores profiles, keeps CMYK, and resizes with bicubic; Pillow's draft() decodes
//     at 1/2..1/8 scale in libjpeg, as libvips' shrink-on-load does. "output/image" shows the
//     mean output size.
//   - The "100 MP" workload uses a ~99-megapixel baseline JPEG made once with `vips resize`
//     from testdata/photos/jpeg-large-progressive.jpg and cached in bench/out/ (imgd's default
//     pixel limit is 100,000,000, so the picture stays just under it).
//
// Workloads: "thumb300" (300 px wide JPEG q80: imgd, vipsthumbnail, Pillow as the old Flask
// service did it — full decode then resize to an exact size — and Pillow at its best with
// draft() + thumbnail()), "webp75" (full-size WebP q75: imgd, Pillow) and "thumb300-100mp".
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // image.DecodeConfig of the inputs
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	thumbPipeline = `[{"op":"resize","width":300},{"op":"convert","format":"jpeg","quality":80}]`
	webpPipeline  = `[{"op":"convert","format":"webp","quality":75}]`
	thumbWidth    = 300
	rssTargetMB   = 250

	bigSource    = "testdata/photos/jpeg-large-progressive.jpg"
	bigPixels    = 99_000_000  // aimed at
	bigMaxPixels = 100_000_000 // imgd's default limit: the big picture must stay within it
)

var (
	magicJPEG = []byte{0xFF, 0xD8, 0xFF}
	magicWebP = []byte("WEBP") // at offset 8, after "RIFF" and the size
)

type config struct {
	root, imgd, dir, out, python string
	runs, vipsConcurrency        int
	skipImgd, skipBig            bool
}

type photo struct {
	path          string
	width, height int
}

// tool is one way to do a workload: a command run once over all the files.
type tool struct {
	name string
	cmd  func(outDir string, files []string) []string
	// checks on the outputs
	ext        string // output extension, for the message
	magicAt    int
	magic      []byte
	checkWidth bool // every output must be thumbWidth wide
}

type workload struct {
	key, title string
	photos     []photo
	tools      []tool
}

type sample struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

type result struct {
	tool     tool
	n        int // images per run
	samples  []sample
	outBytes int64 // of the last run, all outputs
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var c config
	flag.StringVar(&c.imgd, "imgd", "bin/imgd", "imgd binary (build: go build -o bin/imgd ./cmd/imgd)")
	flag.IntVar(&c.runs, "runs", 5, "runs per tool and workload (median reported)")
	flag.StringVar(&c.dir, "dir", "", "folder of .jpg/.jpeg photos (default: $BENCH_DIR, else testdata/photos)")
	flag.StringVar(&c.out, "out", "bench/out", "work and cache folder (outputs, the 100 MP picture)")
	flag.StringVar(&c.python, "python", "", "Python with Pillow (default: python3 on PATH if it has PIL, else /usr/bin/python3)")
	flag.IntVar(&c.vipsConcurrency, "vips-concurrency", 1, "VIPS_CONCURRENCY given to every child")
	flag.BoolVar(&c.skipImgd, "skip-imgd", false, "leave imgd out (only to test the harness before bin/imgd exists)")
	flag.BoolVar(&c.skipBig, "skip-100mp", false, "leave out the 100 MP workload")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if c.runs < 1 {
		return fmt.Errorf("-runs: must be >= 1, got %d", c.runs)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	c.root = root
	// Paths the user gives are relative to the working directory, defaults to the module root.
	given := make(map[string]bool)
	flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["dir"] {
		if d := os.Getenv("BENCH_DIR"); d != "" {
			c.dir, given["dir"] = d, true
		} else {
			c.dir = "testdata/photos"
		}
	}
	for name, p := range map[string]*string{"imgd": &c.imgd, "dir": &c.dir, "out": &c.out} {
		if given[name] {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		} else {
			*p = filepath.Join(root, *p)
		}
	}

	env, err := preflight(&c)
	if err != nil {
		return err
	}
	photos, err := listPhotos(c.dir)
	if err != nil {
		return err
	}
	if err := warm(photos); err != nil {
		return err
	}

	vipsthumb := tool{
		name: "vipsthumbnail",
		cmd: func(out string, files []string) []string {
			return append([]string{"vipsthumbnail", "-s", "300x", "-o", filepath.Join(out, "%s.jpg[Q=80,strip]")}, files...)
		},
		ext: ".jpg", magic: magicJPEG, checkWidth: true,
	}
	pillowScript := filepath.Join(root, "bench", "pillow_bench.py")
	pillow := func(name, mode, ext string, magicAt int, magic []byte, checkWidth bool) tool {
		return tool{
			name: name,
			cmd: func(out string, files []string) []string {
				return append([]string{c.python, pillowScript, mode, out}, files...)
			},
			ext: ext, magicAt: magicAt, magic: magic, checkWidth: checkWidth,
		}
	}
	imgd := func(pipeline, ext string, magicAt int, magic []byte, checkWidth bool) tool {
		return tool{
			name: "imgd process -j 1",
			cmd: func(out string, files []string) []string {
				if len(files) == 1 { // -o is a file for one input, a directory for several
					base := filepath.Base(files[0])
					out = filepath.Join(out, strings.TrimSuffix(base, filepath.Ext(base))+ext)
				}
				return append([]string{c.imgd, "process", "-p", pipeline, "-o", out, "-j", "1"}, files...)
			},
			ext: ext, magicAt: magicAt, magic: magic, checkWidth: checkWidth,
		}
	}
	withImgd := func(t tool, others ...tool) []tool {
		if c.skipImgd {
			return others
		}
		return append([]tool{t}, others...)
	}

	workloads := []workload{
		{
			key: "thumb300", title: "300 px wide JPEG q80 thumbnail", photos: photos,
			tools: withImgd(imgd(thumbPipeline, ".jpg", 0, magicJPEG, true),
				vipsthumb,
				pillow("Pillow, old service (full decode + resize)", "old", ".jpg", 0, magicJPEG, true),
				pillow("Pillow, best (draft + thumbnail)", "best", ".jpg", 0, magicJPEG, true)),
		},
		{
			key: "webp75", title: "full-size WebP q75", photos: photos,
			tools: withImgd(imgd(webpPipeline, ".webp", 8, magicWebP, false),
				pillow("Pillow (open + save WEBP)", "webp", ".webp", 8, magicWebP, false)),
		},
	}
	if !c.skipBig {
		big, err := bigPicture(&c)
		if err != nil {
			return err
		}
		workloads = append(workloads, workload{
			key: "thumb300-100mp", photos: []photo{big},
			title: fmt.Sprintf("300 px wide JPEG q80 thumbnail of one %.1f MP JPEG (%dx%d, baseline)", mp(big), big.width, big.height),
			tools: withImgd(imgd(thumbPipeline, ".jpg", 0, magicJPEG, true),
				vipsthumb,
				pillow("Pillow, best (draft + thumbnail)", "best", ".jpg", 0, magicJPEG, true)),
		})
	}

	printHeader(&c, env, photos)
	results := make(map[string][]result)
	for _, w := range workloads {
		rs, err := measure(&c, w)
		if err != nil {
			return fmt.Errorf("%s: %w", w.key, err)
		}
		results[w.key] = rs
		printTable(w, rs, c.runs)
	}
	printSummary(results)
	printCommands(workloads, c.root)
	return nil
}

// moduleRoot walks up from the working directory to the folder holding go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod in %s or above: run from inside the imgd module", wd)
		}
	}
}

// preflight checks every tool before anything is measured and returns version lines.
func preflight(c *config) ([]string, error) {
	var env, problems []string
	if !c.skipImgd {
		if fi, err := os.Stat(c.imgd); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			problems = append(problems, fmt.Sprintf("imgd binary %s is missing or not executable: build it with `go build -o bin/imgd ./cmd/imgd`, or pass -imgd PATH", c.imgd))
		}
	}
	for _, name := range []string{"vipsthumbnail", "vips", "vipsheader"} {
		if _, err := exec.LookPath(name); err != nil {
			problems = append(problems, fmt.Sprintf("%s not found on PATH: install libvips-tools (Debian: apt-get install libvips-tools)", name))
		}
	}
	if v, err := exec.Command("vips", "--version").Output(); err == nil {
		env = append(env, "libvips: "+strings.TrimSpace(string(v)))
	}

	pyVersion, err := findPython(c)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		env = append(env, fmt.Sprintf("Pillow: %s (%s)", pyVersion, c.python))
	}
	if len(problems) > 0 {
		return nil, errors.New("missing tools:\n  " + strings.Join(problems, "\n  "))
	}
	return env, nil
}

// findPython picks the Python that runs the Pillow side: -python if given, otherwise the first
// of python3 on PATH and /usr/bin/python3 that can import PIL (a pyenv python3 often cannot).
func findPython(c *config) (string, error) {
	script := filepath.Join(c.root, "bench", "pillow_bench.py")
	candidates := []string{c.python}
	if c.python == "" {
		candidates = []string{"python3", "/usr/bin/python3"}
	}
	var tried []string
	for _, py := range candidates {
		path, err := exec.LookPath(py)
		if err != nil {
			tried = append(tried, py+": not found")
			continue
		}
		out, err := exec.Command(path, script, "--version").CombinedOutput()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %s", path, firstLine(out, err)))
			continue
		}
		c.python = path
		return strings.TrimSpace(string(out)), nil
	}
	return "", fmt.Errorf("no Python with Pillow (PIL): install python3-pil (Debian) or pass -python PATH; tried:\n    %s", strings.Join(tried, "\n    "))
}

func listPhotos(dir string) ([]photo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("photos folder: %w", err)
	}
	var photos []photo
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".jpg" && ext != ".jpeg") {
			continue
		}
		p, err := probe(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		photos = append(photos, p)
	}
	if len(photos) == 0 {
		return nil, fmt.Errorf("no .jpg or .jpeg files in %s", dir)
	}
	slices.SortFunc(photos, func(a, b photo) int { return strings.Compare(a.path, b.path) })
	return photos, nil
}

func probe(path string) (photo, error) {
	f, err := os.Open(path)
	if err != nil {
		return photo{}, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return photo{}, fmt.Errorf("read JPEG header of %s: %w", path, err)
	}
	return photo{path: path, width: cfg.Width, height: cfg.Height}, nil
}

// warm reads every input once so that no tool pays for the first disk read.
func warm(photos []photo) error {
	for _, p := range photos {
		f, err := os.Open(p.path)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// bigPicture returns the cached ~99 MP JPEG, making it first if needed.
func bigPicture(c *config) (photo, error) {
	src, err := probe(filepath.Join(c.root, bigSource))
	if err != nil {
		return photo{}, err
	}
	scale := math.Sqrt(bigPixels / float64(src.width*src.height))
	for { // vips rounds each side; step down until the product is within the limit
		w, h := int(math.Round(float64(src.width)*scale)), int(math.Round(float64(src.height)*scale))
		if int64(w)*int64(h) <= bigMaxPixels {
			break
		}
		scale -= 0.001
	}
	path := filepath.Join(c.out, "big-99mp.jpg")
	if p, err := probe(path); err == nil && validBig(p) {
		return p, warm([]photo{p})
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return photo{}, err
	}
	fmt.Fprintf(os.Stderr, "bench: making %s (vips resize %s ×%.4f, once)\n", path, bigSource, scale)
	tmp := path + ".tmp.jpg"
	cmd := exec.Command("vips", "resize", src.path, tmp+"[Q=85,optimize_coding]", strconv.FormatFloat(scale, 'f', 6, 64))
	if out, err := cmd.CombinedOutput(); err != nil {
		return photo{}, fmt.Errorf("make 100 MP picture: %s", firstLine(out, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return photo{}, err
	}
	p, err := probe(path)
	if err != nil {
		return photo{}, err
	}
	if !validBig(p) {
		return photo{}, fmt.Errorf("%s is %dx%d = %.1f MP, want 95..100 MP", path, p.width, p.height, mp(p))
	}
	return p, warm([]photo{p})
}

func validBig(p photo) bool {
	n := int64(p.width) * int64(p.height)
	return n >= 95_000_000 && n <= bigMaxPixels
}

// measure runs every tool of w c.runs times in rotating order and checks the outputs.
func measure(c *config, w workload) ([]result, error) {
	files := make([]string, len(w.photos))
	for i, p := range w.photos {
		files[i] = p.path
	}
	env := append(os.Environ(), "VIPS_CONCURRENCY="+strconv.Itoa(c.vipsConcurrency))
	rs := make([]result, len(w.tools))
	for i, t := range w.tools {
		rs[i].tool, rs[i].n = t, len(files)
	}
	for round := range c.runs {
		for k := range w.tools {
			i := (round + k) % len(w.tools)
			t := w.tools[i]
			outDir := filepath.Join(c.out, w.key, strconv.Itoa(i))
			if err := os.RemoveAll(outDir); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "bench: %s run %d/%d: %s\n", w.key, round+1, c.runs, t.name)
			s, err := runOnce(t.cmd(outDir, files), files, env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			n, err := checkOutputs(t, outDir, len(files), round == 0)
			if err != nil {
				return nil, fmt.Errorf("%s produced wrong output: %w", t.name, err)
			}
			rs[i].samples = append(rs[i].samples, s)
			rs[i].outBytes = n
		}
	}
	return rs, nil
}

func runOnce(argv, files, env []string) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v\n%s", commandLine(argv, files, ""), err, tail(stderr.String(), 2000))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return sample{}, errors.New("no rusage for the child on this system")
	}
	return sample{
		wall:   wall,
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: ru.Maxrss * 1024, // kilobytes on Linux
	}, nil
}

// checkOutputs verifies one output per input, of the right format (and width), and returns
// their total size.
func checkOutputs(t tool, dir string, want int, checkWidths bool) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	if len(entries) != want {
		return 0, fmt.Errorf("%d files in %s, want %d", len(entries), dir, want)
	}
	var total int64
	var paths []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		if len(b) < t.magicAt+len(t.magic) || !bytes.Equal(b[t.magicAt:t.magicAt+len(t.magic)], t.magic) {
			return 0, fmt.Errorf("%s is not a %s file", p, t.ext)
		}
		total += int64(len(b))
		paths = append(paths, p)
	}
	if checkWidths && t.checkWidth {
		out, err := exec.Command("vipsheader", append([]string{"-f", "width"}, paths...)...).Output()
		if err != nil {
			return 0, fmt.Errorf("vipsheader: %w", err)
		}
		widths := strings.Fields(string(out))
		for i, w := range widths {
			if w != strconv.Itoa(thumbWidth) {
				return 0, fmt.Errorf("%s is %s px wide, want %d", paths[i], w, thumbWidth)
			}
		}
		if len(widths) != len(paths) {
			return 0, fmt.Errorf("vipsheader gave %d widths for %d files", len(widths), len(paths))
		}
	}
	return total, nil
}

// stats of one result: medians of wall and CPU time, largest RSS.
type stats struct {
	imagesPerSec, cpuPerImage float64 // images/s by median wall; median CPU-s per image
	cpuMin, cpuMax            float64 // CPU-s per image of the cheapest and dearest run
	peakRSS                   int64
	outPerImage               float64 // bytes
}

func (r result) stats() stats {
	n := r.n
	var walls, cpus []float64
	var rss int64
	for _, s := range r.samples {
		walls = append(walls, s.wall.Seconds())
		cpus = append(cpus, s.cpu.Seconds())
		rss = max(rss, s.maxRSS)
	}
	return stats{
		imagesPerSec: float64(n) / median(walls),
		cpuPerImage:  median(cpus) / float64(n),
		cpuMin:       slices.Min(cpus) / float64(n),
		cpuMax:       slices.Max(cpus) / float64(n),
		peakRSS:      rss,
		outPerImage:  float64(r.outBytes) / float64(n),
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printHeader(c *config, env []string, photos []photo) {
	var pixels float64
	for _, p := range photos {
		pixels += mp(p)
	}
	rel, err := filepath.Rel(c.root, c.dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = c.dir
	}
	fmt.Printf("## Benchmark: imgd vs vipsthumbnail and Pillow\n\n")
	fmt.Printf("- Machine: %s, %d CPUs, %s/%s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	for _, e := range env {
		fmt.Printf("- %s\n", e)
	}
	fmt.Printf("- Inputs: %d JPEGs from `%s`, %.1f MP in all (%.1f MP mean)\n", len(photos), rel, pixels, pixels/float64(len(photos)))
	fmt.Printf("- Method: one process per tool over all inputs, %d run%s, interleaved; median wall and CPU (user+sys from rusage), max RSS; VIPS_CONCURRENCY=%d; imgd with -j 1\n\n", c.runs, plural(c.runs), c.vipsConcurrency)
}

func printTable(w workload, rs []result, runs int) {
	n := len(w.photos)
	ref, refName := -1, ""
	for i, r := range rs {
		if strings.HasPrefix(r.tool.name, "imgd") {
			ref, refName = i, "imgd"
		}
	}
	if ref < 0 && len(rs) > 0 { // -skip-imgd: compare with the first tool
		ref, refName = 0, rs[0].tool.name
	}
	refCPU := rs[ref].stats().cpuPerImage
	fmt.Printf("### %s (%s: %d image%s, %d run%s)\n\n", w.title, w.key, n, plural(n), runs, plural(runs))
	fmt.Printf("| tool | images/s | CPU-s/image | CPU range | CPU vs %s | peak RSS | output/image |\n", refName)
	fmt.Printf("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		s := r.stats()
		fmt.Printf("| %s | %.2f | %.4f | %.4f–%.4f | %.2fx | %s | %s |\n",
			r.tool.name, s.imagesPerSec, s.cpuPerImage, s.cpuMin, s.cpuMax, s.cpuPerImage/refCPU, megabytes(s.peakRSS), kilobytes(s.outPerImage))
	}
	fmt.Println()
}

func printSummary(results map[string][]result) {
	find := func(key, prefix string) (stats, bool) {
		rs := results[key]
		if len(rs) == 0 {
			return stats{}, false
		}
		for _, r := range rs {
			if strings.HasPrefix(r.tool.name, prefix) {
				return r.stats(), true
			}
		}
		return stats{}, false
	}
	fmt.Printf("### Summary\n\n")
	imgdThumb, haveImgd := find("thumb300", "imgd")
	vt, _ := find("thumb300", "vipsthumbnail")
	old, _ := find("thumb300", "Pillow, old")
	best, _ := find("thumb300", "Pillow, best")
	cheapest, cheapestName := vt, "vipsthumbnail"
	if best.cpuPerImage < cheapest.cpuPerImage {
		cheapest, cheapestName = best, "Pillow best"
	}
	if haveImgd {
		fmt.Printf("- imgd thumb CPU/image vs cheapest other (%s): %.2fx\n", cheapestName, imgdThumb.cpuPerImage/cheapest.cpuPerImage)
		fmt.Printf("- imgd thumb vs old service method (Pillow full decode + resize): %.1fx cheaper in CPU, %.1fx faster\n",
			old.cpuPerImage/imgdThumb.cpuPerImage, imgdThumb.imagesPerSec/old.imagesPerSec)
		if pw, ok := find("webp75", "Pillow"); ok {
			iw, _ := find("webp75", "imgd")
			fmt.Printf("- imgd WebP q75 CPU/image vs Pillow: %.2fx\n", iw.cpuPerImage/pw.cpuPerImage)
		}
		if ib, ok := find("thumb300-100mp", "imgd"); ok {
			vb, _ := find("thumb300-100mp", "vipsthumbnail")
			verdict := "met"
			if ib.peakRSS >= rssTargetMB<<20 {
				verdict = "NOT MET"
			}
			fmt.Printf("- 100MP thumbnail peak RSS: %s (target < %d MB: %s); vipsthumbnail %s\n", megabytes(ib.peakRSS), rssTargetMB, verdict, megabytes(vb.peakRSS))
			fmt.Printf("- 100MP thumbnail CPU: %.2f s (vipsthumbnail %.2f s, %.2fx)\n", ib.cpuPerImage, vb.cpuPerImage, ib.cpuPerImage/vb.cpuPerImage)
		}
	} else {
		fmt.Printf("- imgd not measured (-skip-imgd)\n")
	}
	fmt.Printf("- reference: vipsthumbnail vs old service method: %.1fx cheaper in CPU; Pillow best vs old: %.1fx cheaper\n",
		old.cpuPerImage/vt.cpuPerImage, old.cpuPerImage/best.cpuPerImage)
	if vb, ok := find("thumb300-100mp", "vipsthumbnail"); ok {
		fmt.Printf("- reference: 100MP vipsthumbnail %.2f CPU-s, peak RSS %s\n", vb.cpuPerImage, megabytes(vb.peakRSS))
	}
	fmt.Println()
}

func printCommands(workloads []workload, root string) {
	fmt.Printf("<details><summary>Commands</summary>\n\n```\n")
	for _, w := range workloads {
		files := make([]string, len(w.photos))
		for i, p := range w.photos {
			files[i] = p.path
		}
		for _, t := range w.tools {
			fmt.Printf("%-15s %s\n", w.key, commandLine(t.cmd("OUT", files), files, root))
		}
	}
	fmt.Printf("```\n\n</details>\n")
}

// commandLine shows argv for a reader: paths lose the prefix root, the input files become
// "FILES(n)", and arguments with shell metacharacters are quoted.
func commandLine(argv, files []string, root string) string {
	short := func(p string) string {
		if root == "" {
			return p
		}
		return strings.TrimPrefix(p, root+string(filepath.Separator))
	}
	var out []string
	for _, a := range argv {
		a = short(a)
		if slices.ContainsFunc(files, func(f string) bool { return short(f) == a }) {
			if len(out) == 0 || !strings.HasPrefix(out[len(out)-1], "FILES(") {
				out = append(out, fmt.Sprintf("FILES(%d)", len(files)))
			}
			continue
		}
		if strings.ContainsAny(a, ` "'[]{}%*?$`) {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func mp(p photo) float64 { return float64(p.width) * float64(p.height) / 1e6 }

func megabytes(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func kilobytes(b float64) string { return fmt.Sprintf("%.1f KB", b/1024) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func firstLine(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return err.Error()
	}
	return strings.SplitN(s, "\n", 2)[0]
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
