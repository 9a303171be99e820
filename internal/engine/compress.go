package engine

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/ssim"
	"github.com/imgd/imgd/internal/vips"
)

// levelTargets are the SSIM targets (mean SSIM on linear-light luma,
// internal/ssim) of the named compress levels, per format, calibrated
// against Butteraugli on the testdata photos (`go run ./bench/compress
// -calibrate -width 1024`; docs/compression.md has the method and data):
// high is the Butteraugli distance JPEG q80 gives on the median photo,
// medium and low 1 and 2 further, and each format's target is the SSIM at
// which that format reaches the distance, since SSIM weighs each codec's
// artefacts differently. PNG palettes and GIF have no calibration of their
// own and use JPEG's.
var levelTargets = map[imgd.Format]map[string]float64{
	imgd.FormatJPEG: {imgd.QualityHigh: 0.9883, imgd.QualityMedium: 0.9808, imgd.QualityLow: 0.9723},
	imgd.FormatWebP: {imgd.QualityHigh: 0.9863, imgd.QualityMedium: 0.9812, imgd.QualityLow: 0.9762},
	imgd.FormatAVIF: {imgd.QualityHigh: 0.9888, imgd.QualityMedium: 0.9832, imgd.QualityLow: 0.9774},
	imgd.FormatPNG:  {imgd.QualityHigh: 0.9883, imgd.QualityMedium: 0.9808, imgd.QualityLow: 0.9723},
	imgd.FormatGIF:  {imgd.QualityHigh: 0.9883, imgd.QualityMedium: 0.9808, imgd.QualityLow: 0.9723},
}

// qualityRange are the encoder quality clamps searched per lossy format:
// below min the artefacts are never acceptable, above max the files grow
// much faster than the score.
var qualityRange = map[imgd.Format][2]int{
	imgd.FormatJPEG: {30, 95},
	imgd.FormatWebP: {30, 95},
	imgd.FormatAVIF: {20, 90},
}

// firstGuess is where the search starts per format: near where the "high"
// target lands on typical photos, so a search usually brackets the answer
// after one or two encodes.
var firstGuess = map[imgd.Format]int{imgd.FormatJPEG: 72, imgd.FormatWebP: 72, imgd.FormatAVIF: 55}

// searchTolerance: the search stops once the smallest passing quality is
// known to within this many steps (the encoders' files grow by about 1.5 %
// a step at these qualities).
const searchTolerance = 2

// candidate is one encoding tried by compress.
type candidate struct {
	format  imgd.Format
	quality int // 0 for lossless PNG; palette PNG reports 1..100 as libvips' Q
	data    []byte
	score   float64
}

// compressResult is one format's best encoding and what it took.
type compressResult struct {
	candidate
	encodes   int
	targetMet bool
}

// compressEncode encodes j.im as c asks: for each candidate format the
// smallest encoding whose SSIM against j.im reaches the target (and that
// fits max_bytes), then the smallest of the formats. j.im is kept (it is
// copied to memory, since it is read once per encode).
func (j *job) compressEncode(c *imgd.Compress) (data []byte, format imgd.Format, out map[string]any, err error) {
	if err := j.im.CopyMemory(); err != nil {
		return nil, "", nil, err
	}
	formats, err := j.compressCandidates(c)
	if err != nil {
		return nil, "", nil, err
	}
	var results []compressResult
	var firstErr error
	for _, f := range formats {
		r, err := j.compressFormat(c, f)
		if err != nil {
			if len(formats) == 1 || imgd.CodeOf(err) != imgd.CodeOverLimit {
				return nil, "", nil, err
			}
			if firstErr == nil {
				firstErr = err // e.g. WebP cannot store this size: the other formats may
			}
			continue
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return nil, "", nil, firstErr
	}
	best := pickBest(results, c.Target != nil || c.Quality != "")
	return best.data, best.format, compressOutputs(c, best, results), nil
}

// pickBest keeps, among the formats that meet the target, the smallest;
// when none does (max_bytes won) or there is no target, the best scoring.
func pickBest(rs []compressResult, hasTarget bool) compressResult {
	var met []compressResult
	for _, r := range rs {
		if hasTarget && r.targetMet {
			met = append(met, r)
		}
	}
	if len(met) > 0 {
		return slices.MinFunc(met, func(a, b compressResult) int { return len(a.data) - len(b.data) })
	}
	return slices.MaxFunc(rs, func(a, b compressResult) int { return cmp.Compare(a.score, b.score) })
}

func compressOutputs(c *imgd.Compress, best compressResult, rs []compressResult) map[string]any {
	target := targetFor(c, best.format)
	iterations := 0
	tried := make([]map[string]any, 0, len(rs))
	for _, r := range rs {
		iterations += r.encodes
		t := map[string]any{"format": r.format, "quality": r.quality, "score": floor4(r.score),
			"bytes": len(r.data), "encodes": r.encodes}
		if target > 0 {
			t["target_met"] = r.targetMet
		}
		tried = append(tried, t)
	}
	out := map[string]any{"format": best.format, "quality_used": best.quality, "metric": "ssim",
		"score": floor4(best.score), "bytes": len(best.data), "iterations": iterations, "candidates": tried}
	if target > 0 {
		out["target"], out["target_met"] = target, best.targetMet
	}
	return out
}

// floor4 rounds a score down to 4 decimals, so a reported score never
// looks better than it was.
func floor4(v float64) float64 { return math.Floor(v*1e4) / 1e4 }

// targetFor is the SSIM target of c for format f, 0 when c has only max_bytes.
func targetFor(c *imgd.Compress, f imgd.Format) float64 {
	if c.Target != nil {
		return c.Target.SSIM
	}
	if c.Quality == "" {
		return 0
	}
	return levelTargets[f][c.Quality]
}

// compressCandidates lists the formats to try: the asked one, or for auto
// those that keep what the image has: animation (WebP, GIF) and
// transparency (no JPEG).
func (j *job) compressCandidates(c *imgd.Compress) ([]imgd.Format, error) {
	if c.Format != imgd.FormatAuto {
		return []imgd.Format{c.Format}, nil
	}
	if j.frames > 1 {
		return []imgd.Format{imgd.FormatWebP, imgd.FormatGIF}, nil
	}
	transparent, err := j.transparent()
	if err != nil {
		return nil, err
	}
	if transparent {
		return []imgd.Format{imgd.FormatWebP, imgd.FormatAVIF, imgd.FormatPNG}, nil
	}
	return []imgd.Format{imgd.FormatJPEG, imgd.FormatWebP, imgd.FormatAVIF, imgd.FormatPNG}, nil
}

// transparent reports whether some pixel of j.im is not opaque: an alpha
// band that is all 255 does not rule JPEG out.
func (j *job) transparent() (bool, error) {
	if !j.im.HasAlpha() {
		return false, nil
	}
	pix, err := j.im.Pixels()
	if err != nil {
		return false, err
	}
	bands := j.im.Bands()
	for i := bands - 1; i < len(pix); i += bands {
		if pix[i] != 255 {
			return true, nil
		}
	}
	return false, nil
}

// encoder encodes one format at chosen qualities and scores each output
// against the pixels the encoder was given.
type encoder struct {
	j       *job // a job of its own on a second reference to the image
	format  imgd.Format
	strip   *bool
	ref     *ssim.Reference
	encodes int
	tried   map[int]candidate
}

func (j *job) newEncoder(c *imgd.Compress, f imgd.Format) *encoder {
	sub := &job{e: j.e, src: j.src, info: j.info, im: j.im.Ref(), frames: j.frames, outputs: map[string]any{}}
	return &encoder{j: sub, format: f, strip: c.Strip, tried: map[int]candidate{}}
}

func (en *encoder) close() { en.j.im.Close() }

// at encodes at quality q (for PNG: q > 0 is palette quantisation at
// libvips' Q q, 0 lossless) and scores the result.
func (en *encoder) at(q int) (candidate, error) {
	if c, ok := en.tried[q]; ok {
		return c, nil
	}
	// Progressive JPEG stores the same coefficients (the same pixels) in
	// fewer bytes on all but tiny images.
	conv := &imgd.Convert{Format: en.format, Quality: q, Strip: en.strip, Progressive: en.format == imgd.FormatJPEG}
	data, err := en.j.encode(en.format, conv)
	if err != nil {
		return candidate{}, err
	}
	en.encodes++
	if en.ref == nil {
		// encode has now made the image what the encoder sees (alpha
		// flattened for JPEG, one frame for still formats): that is what
		// the output must look like.
		if en.ref, err = en.j.reference(); err != nil {
			return candidate{}, err
		}
	}
	score, err := en.j.score(en.ref, data, en.format)
	if err != nil {
		return candidate{}, err
	}
	c := candidate{format: en.format, quality: q, data: data, score: score}
	en.tried[q] = c
	return c, nil
}

// ssimImage returns j.im's first frame for internal/ssim. Animations are
// scored on their first frame only: WebP merges identical consecutive
// frames, so decoded strips need not line up frame by frame.
func (j *job) ssimImage() (ssim.Image, error) {
	pix, err := j.im.Pixels()
	if err != nil {
		return ssim.Image{}, err
	}
	w, h, bands := j.im.Width(), j.im.PageHeight(), j.im.Bands()
	return ssim.Image{Pix: pix[:w*h*bands], W: w, H: h, Bands: bands}, nil
}

func (j *job) reference() (*ssim.Reference, error) {
	im, err := j.ssimImage()
	if err != nil {
		return nil, err
	}
	return ssim.NewReference(im, ssim.Options{})
}

// score decodes an encoded output the way a viewer would and compares it
// with the reference.
func (j *job) score(ref *ssim.Reference, data []byte, f imgd.Format) (float64, error) {
	defer vips.Pin(data)()
	im, err := vips.Load(data, vips.LoadOptions{Format: loaderOf(f), FailOn: vips.FailOnError, Sequential: true})
	if err != nil {
		return 0, fmt.Errorf("decode own %s output: %w", f, err)
	}
	dec := &job{e: j.e, im: im}
	defer im.Close()
	if err := im.ToSRGB(); err != nil {
		return 0, err
	}
	out, err := dec.ssimImage()
	if err != nil {
		return 0, err
	}
	return ref.SSIM(out)
}

// compressFormat finds format f's best encoding for c.
func (j *job) compressFormat(c *imgd.Compress, f imgd.Format) (compressResult, error) {
	en := j.newEncoder(c, f)
	defer en.close()
	target := targetFor(c, f)
	var best candidate
	var err error
	switch f {
	case imgd.FormatPNG:
		best, err = en.png(target, c.MaxBytes)
	case imgd.FormatGIF:
		best, err = en.at(0) // GIF has no quality knob: one palette encode
	default:
		best, err = en.search(target, c.MaxBytes)
	}
	if err != nil {
		return compressResult{}, err
	}
	if c.MaxBytes > 0 && len(best.data) > c.MaxBytes {
		return compressResult{}, &imgd.Error{Code: imgd.CodeOverLimit, Field: "max_bytes",
			Message: fmt.Sprintf("the smallest %s imgd can make is %d bytes, over max_bytes %d", f, len(best.data), c.MaxBytes)}
	}
	met := target == 0 || best.score >= target
	return compressResult{candidate: best, encodes: en.encodes, targetMet: met}, nil
}

// png: palette quantisation when it meets the target, lossless otherwise.
func (en *encoder) png(target float64, maxBytes int) (candidate, error) {
	pal, err := en.at(90)
	if err != nil {
		return candidate{}, err
	}
	if target > 0 && pal.score >= target {
		return pal, nil
	}
	lossless, err := en.at(0)
	if err != nil {
		return candidate{}, err
	}
	if maxBytes > 0 && len(lossless.data) > maxBytes && len(pal.data) <= maxBytes {
		return pal, nil // fits, though below the target
	}
	return lossless, nil
}

// search bisects the encoder quality of a lossy format: the smallest
// quality whose output reaches target, then, when that is over maxBytes,
// the largest quality that fits. With no target, the largest that fits.
func (en *encoder) search(target float64, maxBytes int) (candidate, error) {
	lo, hi := qualityRange[en.format][0], qualityRange[en.format][1]
	if target > 0 {
		_, q, err := en.lowestPassing(lo, hi, firstGuess[en.format], func(c candidate) float64 { return distortionScale(c.score) },
			distortionScale(target))
		if err != nil {
			return candidate{}, err
		}
		q = min(q, hi) // none passes: the best this format can do
		best, err := en.at(q)
		if err != nil || maxBytes == 0 || len(best.data) <= maxBytes {
			return best, err
		}
		hi = q
	}
	if maxBytes == 0 {
		return en.at(hi)
	}
	// The highest quality tested that fits (none at lo: the caller
	// reports that the smallest is too big).
	fits, _, err := en.lowestPassing(lo, hi, (lo+hi)/2, func(c candidate) float64 { return math.Log(float64(len(c.data))) },
		math.Log(float64(maxBytes)+0.5))
	if err != nil {
		return candidate{}, err
	}
	return en.at(max(fits, lo))
}

// distortionScale maps an SSIM score to -log(1-score), which grows about
// linearly with the encoder quality, so the search's interpolation lands
// near the answer (file sizes are interpolated on a log scale likewise).
func distortionScale(score float64) float64 { return -math.Log(max(1-score, 1e-9)) }

// lowestPassing brackets the lowest quality in [lo, hi] at which
// value(q) >= threshold, assuming value grows with the quality: it fails
// at fail (lo-1 when it holds at lo) and holds at ok (hi+1 when it never
// does), and ok-fail <= searchTolerance. It starts at guess, steps away
// from it (12, 24, …) until the answer is bracketed, then interpolates
// linearly between the bracket's values (regula falsi), falling back to
// bisection when an interpolated probe does not halve the bracket.
func (en *encoder) lowestPassing(lo, hi, guess int, value func(candidate) float64, threshold float64) (fail, ok int, err error) {
	type point struct {
		q int
		v float64
	}
	var pf, po point // the values at fail and ok once tested
	test := func(q int) (bool, error) {
		c, err := en.at(q)
		if err != nil {
			return false, err
		}
		v := value(c)
		if v >= threshold {
			ok, po = q, point{q, v}
			return true, nil
		}
		fail, pf = q, point{q, v}
		return false, nil
	}
	fail, ok = lo-1, hi+1 // not tested
	q := min(max(guess, lo), hi)
	var prev *point
	for step := 12; ; step *= 2 {
		p, err := test(q)
		if err != nil {
			return 0, 0, err
		}
		if (ok <= hi && fail >= lo) || ok == lo || fail == hi {
			break
		}
		last := po
		if !p {
			last = pf
		}
		move := step
		if prev != nil && last.v != prev.v && (last.v-prev.v)/float64(last.q-prev.q) > 0 {
			// Two probes on one side: extrapolate, a quarter further
			// to land on the other side.
			slope := (last.v - prev.v) / float64(last.q-prev.q)
			move = max(4, int(math.Ceil(1.25*math.Abs(threshold-last.v)/slope)))
		}
		prev = &last
		if p {
			q = max(q-move, lo)
		} else {
			q = min(q+move, hi)
		}
	}
	interpolate := true
	for ok-fail > searchTolerance && ok <= hi && fail >= lo {
		gap := ok - fail
		q := (fail + ok) / 2
		if interpolate && po.v > pf.v {
			// Round up: a passing probe just above the answer lets the
			// next one (ok - tolerance) close the bracket.
			est := float64(pf.q) + (threshold-pf.v)/(po.v-pf.v)*float64(po.q-pf.q)
			q = min(max(int(math.Ceil(est)), fail+1), ok-1)
			if q == ok-1 && gap > 2*searchTolerance {
				q = ok - searchTolerance // just under ok: confirms ok is close
			}
		}
		if _, err := test(q); err != nil {
			return 0, 0, err
		}
		interpolate = ok-fail <= gap/2
	}
	return fail, ok, nil
}

// compressFormats are the encoders c may use (their libvips modules must be
// loaded before the run).
func compressFormats(c *imgd.Compress) []imgd.Format {
	if c.Format == imgd.FormatAuto {
		return []imgd.Format{imgd.FormatJPEG, imgd.FormatWebP, imgd.FormatAVIF, imgd.FormatPNG, imgd.FormatGIF}
	}
	return []imgd.Format{c.Format}
}
