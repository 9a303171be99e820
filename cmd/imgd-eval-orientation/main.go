// Command imgd-eval-orientation measures detect_orientation on a labelled
// folder (labels.tsv: file, true_angle, kind, ...) beside the replaced
// service's Hough-median detector, and writes both methods' predictions as
// TSV files that score.sh reads.
//
//	go run ./cmd/imgd-eval-orientation [-dir testdata/orientation-dev] [-out bin/orientation]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imgd/imgd/internal/engine"
	"github.com/imgd/imgd/internal/orient"
)

func main() {
	dir := flag.String("dir", "testdata/orientation-dev", "labelled folder (labels.tsv)")
	out := flag.String("out", "bin/orientation", "prefix of the predictions files (PREFIX-imgd.tsv, PREFIX-hough.tsv)")
	flag.Parse()
	labels, err := readLabels(filepath.Join(*dir, "labels.tsv"))
	if err != nil {
		fail(err)
	}
	eng, err := engine.New(engine.Options{})
	if err != nil {
		fail(err)
	}
	methods := []method{{name: "imgd detect_orientation", file: "imgd", detect: detectImgd},
		{name: "baseline: the seed's Canny + Hough median angle", file: "hough", detect: detectHough}}
	// One OS thread for the whole run, so its CPU time is one core's.
	runtime.LockOSThread()
	for _, l := range labels {
		src, err := os.ReadFile(filepath.Join(*dir, l.file))
		if err != nil {
			fail(err)
		}
		info, err := eng.Probe(src)
		if err != nil {
			fail(fmt.Errorf("%s: %v", l.file, err))
		}
		px, err := eng.Decode(src)
		if err != nil {
			fail(fmt.Errorf("%s: %v", l.file, err))
		}
		im := orient.Image{Pix: px.Data, Width: px.Width, Height: px.Height, Bands: px.Bands}
		for i := range methods {
			methods[i].run(l, im, info.Orientation)
		}
	}
	fmt.Printf("orientation evaluation: %s (%d files)\n", *dir, len(labels))
	for _, m := range methods {
		m.report(os.Stdout)
		if *out != "" {
			path := *out + "-" + m.file + ".tsv"
			if err := m.writeTSV(path); err != nil {
				fail(err)
			}
			fmt.Printf("  predictions: %s\n", path)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "imgd-eval-orientation:", err)
	os.Exit(1)
}

type label struct {
	file  string
	angle float64
	kind  string
}

func readLabels(path string) ([]label, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ls []label
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		c := strings.Split(strings.TrimRight(sc.Text(), "\r"), "\t")
		if c[0] == "" || strings.HasPrefix(c[0], "#") {
			continue
		}
		a, err := strconv.ParseFloat(strings.TrimSpace(c[1]), 64)
		if err != nil {
			if n == 1 {
				continue // header
			}
			return nil, fmt.Errorf("%s:%d: bad true_angle %q", path, n, c[1])
		}
		kind := "unknown"
		if len(c) > 2 && c[2] != "" {
			kind = c[2]
		}
		ls = append(ls, label{c[0], a, kind})
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("%s: no labelled files", path)
	}
	return ls, sc.Err()
}

// prediction is one method's answer for one file.
type prediction struct {
	label
	pred, conf float64
	kindSeen   string  // what the method took the file for
	cpu        float64 // milliseconds of CPU time on one core
}

type method struct {
	name, file string
	detect     func(im orient.Image, exif int) (angle, conf float64, kind string)
	preds      []prediction
}

func detectImgd(im orient.Image, exif int) (float64, float64, string) {
	if r, ok := orient.FromEXIF(exif); ok && exif > 1 {
		return r.Total(), r.Confidence, r.Kind
	}
	r, err := orient.Detect(im)
	if err != nil {
		fail(err)
	}
	return r.Total(), r.Confidence, r.Kind
}

func detectHough(im orient.Image, _ int) (float64, float64, string) {
	a, c := houghMedian(im)
	return a, c, "-"
}

func (m *method) run(l label, im orient.Image, exif int) {
	t0 := threadCPU()
	a, c, k := m.detect(im, exif)
	m.preds = append(m.preds, prediction{label: l, pred: a, conf: c, kindSeen: k, cpu: (threadCPU() - t0).Seconds() * 1000})
}

// threadCPU is the CPU time of the calling OS thread (Linux), so that the
// figures hold on a busy machine too.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		fail(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// coarse and fine split an angle as score.sh does.
func coarse(a float64) int {
	n := norm(a)
	return int(math.Floor(n/90+0.5)) % 4 * 90
}

func fine(a float64) float64 {
	n := norm(a)
	return n - 90*math.Floor(n/90+0.5)
}

func norm(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	return a
}

func (p prediction) right() bool { return coarse(p.angle) == coarse(p.pred) }

func pct(a, b int) string {
	if b == 0 {
		return "    n/a"
	}
	return fmt.Sprintf("%6.2f%%", 100*float64(a)/float64(b))
}

func (m *method) kinds() []string {
	var ks []string
	for _, p := range m.preds {
		if !slices.Contains(ks, p.kind) {
			ks = append(ks, p.kind)
		}
	}
	slices.Sort(ks)
	return ks
}

func (m *method) report(w *os.File) {
	fmt.Fprintf(w, "\n== %s\n", m.name)
	fmt.Fprintf(w, "0/90/180/270 accuracy       %-10s %5s  %s\n", "kind", "n", "accuracy   per true class 0 / 90 / 180 / 270")
	m.accuracyLine(w, "all", func(prediction) bool { return true })
	for _, k := range m.kinds() {
		m.accuracyLine(w, k, func(p prediction) bool { return p.kind == k })
	}
	fmt.Fprintf(w, "accuracy at confidence >= 0.5 (coverage)\n")
	for _, k := range append([]string{"all"}, m.kinds()...) {
		n, nc, ok := 0, 0, 0
		for _, p := range m.preds {
			if k != "all" && p.kind != k {
				continue
			}
			n++
			if p.conf >= 0.5 {
				nc++
				if p.right() {
					ok++
				}
			}
		}
		fmt.Fprintf(w, "  %-10s %s  coverage %s  (%d files)\n", k, pct(ok, nc), pct(nc, n), nc)
	}
	m.skewLine(w)
	m.calibration(w)
	m.timing(w)
}

func (m *method) accuracyLine(w *os.File, name string, in func(prediction) bool) {
	var n, ok int
	var cn, cok [4]int
	for _, p := range m.preds {
		if !in(p) {
			continue
		}
		c := coarse(p.angle) / 90
		n++
		cn[c]++
		if p.right() {
			ok++
			cok[c]++
		}
	}
	line := ""
	for c := range 4 {
		line += fmt.Sprintf("  %s (%d)", pct(cok[c], cn[c]), cn[c])
	}
	fmt.Fprintf(w, "  %-26s %-10s %5d  %s %s\n", "", name, n, pct(ok, n), line)
}

func (m *method) skewLine(w *os.File) {
	var errs []float64
	nd := 0
	for _, p := range m.preds {
		if p.kind != orient.KindDocument {
			continue
		}
		nd++
		if p.right() {
			errs = append(errs, math.Abs(fine(p.pred)-fine(p.angle)))
		}
	}
	if len(errs) == 0 {
		return
	}
	var sum float64
	for _, e := range errs {
		sum += e
	}
	slices.Sort(errs)
	fmt.Fprintf(w, "document skew on %d of %d documents whose coarse class was right\n", len(errs), nd)
	fmt.Fprintf(w, "  mean absolute skew error   %.3f deg   (median %.3f, max %.3f)\n", sum/float64(len(errs)), errs[len(errs)/2], errs[len(errs)-1])
}

// calibration bins the answers by confidence: a calibrated method's
// accuracy in each bin is close to the bin's mean confidence.
func (m *method) calibration(w *os.File) {
	edges := []float64{0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0000001}
	fmt.Fprintf(w, "calibration: confidence bin, files, mean confidence, accuracy (by kind)\n")
	for _, k := range m.kinds() {
		for i := range len(edges) - 1 {
			n, ok := 0, 0
			var c float64
			for _, p := range m.preds {
				if p.kind == k && p.conf >= edges[i] && p.conf < edges[i+1] {
					n++
					c += p.conf
					if p.right() {
						ok++
					}
				}
			}
			if n > 0 {
				fmt.Fprintf(w, "  %-10s [%.2f, %.2f)  %4d  %.3f  %s\n", k, edges[i], math.Min(edges[i+1], 1), n, c/float64(n), pct(ok, n))
			}
		}
	}
}

func (m *method) timing(w *os.File) {
	fmt.Fprintf(w, "CPU ms per image on one core (decoding excluded)\n")
	for _, k := range m.kinds() {
		var t []float64
		for _, p := range m.preds {
			if p.kind == k {
				t = append(t, p.cpu)
			}
		}
		slices.Sort(t)
		fmt.Fprintf(w, "  %-10s median %6.1f   p90 %6.1f   max %6.1f\n", k, t[len(t)/2], t[len(t)*9/10], t[len(t)-1])
	}
}

func (m *method) writeTSV(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("file\tpredicted_angle\tconfidence\tkind\n")
	for _, p := range m.preds {
		fmt.Fprintf(&b, "%s\t%.2f\t%.3f\t%s\n", p.file, p.pred, p.conf, p.kindSeen)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
