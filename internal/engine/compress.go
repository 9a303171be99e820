package engine

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/ssim"
	"github.com/imgd/imgd/internal/vips"
)

// level is a named compress quality. Its search does not aim at one SSIM
// for every image: it stops where more bytes stop buying much similarity,
// that is at the quality that maximises
//
//	gain = SSIM - bpp/lambda      (bpp: bits per pixel of the output)
//
// so it stops where one more bit per pixel would raise the SSIM by less
// than 1/lambda. On easy images (smooth, clean) that point is a high SSIM
// reached with few bytes; on hard ones (fine texture, noise) every step of
// SSIM costs many bytes and the search stops lower, but never under floor.
// One exchange rate between SSIM and bytes for all images is what spends a
// catalogue's bytes where they raise the mean SSIM most (the equal-slope
// rule of rate-distortion allocation). The values are calibrated on photos
// the benchmark does not use (`go run ./bench/compress -calibrate`;
// docs/compression.md has the method and the data): high's lambda is the
// cheapest at which the level keeps both the mean and the worst SSIM of
// JPEG q80 (the replaced service), medium and low halve it in turn, and a
// floor is the lowest SSIM the level's own choices reach there.
type level struct {
	lambda float64 // bits per pixel one unit of SSIM is worth
	floor  float64 // the SSIM the output never goes under (unless max_bytes forces it)
}

var levels = map[string]level{
	imgd.QualityHigh:   {lambda: 31, floor: 0.971},
	imgd.QualityMedium: {lambda: 15.5, floor: 0.933},
	imgd.QualityLow:    {lambda: 7.75, floor: 0.897},
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
	bpp     float64 // bits per pixel of data (all frames)
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
	best := pickBest(results, c)
	return best.data, best.format, compressOutputs(c, best, results), nil
}

// pickBest keeps, among the formats that meet the target (a level's
// floor), the smallest, or for a level the one with the best trade-off
// between SSIM and bytes; when none does (max_bytes won) or there is no
// target, the best scoring.
func pickBest(rs []compressResult, c *imgd.Compress) compressResult {
	var met []compressResult
	for _, r := range rs {
		if targetFor(c) > 0 && r.targetMet {
			met = append(met, r)
		}
	}
	if lv, ok := levelOf(c); ok && len(met) > 0 {
		return slices.MaxFunc(met, func(a, b compressResult) int { return cmp.Compare(lv.gain(a.candidate), lv.gain(b.candidate)) })
	}
	if len(met) > 0 {
		return slices.MinFunc(met, func(a, b compressResult) int { return len(a.data) - len(b.data) })
	}
	return slices.MaxFunc(rs, func(a, b compressResult) int { return cmp.Compare(a.score, b.score) })
}

func compressOutputs(c *imgd.Compress, best compressResult, rs []compressResult) map[string]any {
	target := targetFor(c)
	iterations := 0
	tried := make([]map[string]any, 0, len(rs))
	for _, r := range rs {
		iterations += r.encodes
		t := map[string]any{"format": r.format, "quality": r.quality, "score": floor4(r.score),
			"bytes": len(r.data), "bpp": round3(r.bpp), "encodes": r.encodes}
		if target > 0 {
			t["target_met"] = r.targetMet
		}
		tried = append(tried, t)
	}
	out := map[string]any{"format": best.format, "quality_used": best.quality, "metric": "ssim",
		"score": floor4(best.score), "bytes": len(best.data), "bpp": round3(best.bpp), "iterations": iterations,
		"candidates": tried}
	if target > 0 {
		out["target"], out["target_met"] = target, best.targetMet
	}
	return out
}

// floor4 rounds a score down to 4 decimals, so a reported score never
// looks better than it was.
func floor4(v float64) float64 { return math.Floor(v*1e4) / 1e4 }

func round3(v float64) float64 { return math.Round(v*1e3) / 1e3 }

// targetFor is the SSIM c must reach: its explicit target or its level's
// floor; 0 when c has only max_bytes.
func targetFor(c *imgd.Compress) float64 {
	if c.Target != nil {
		return c.Target.SSIM
	}
	if lv, ok := levelOf(c); ok {
		return lv.floor
	}
	return 0
}

// levelOf is c's named level, when c asks for one (an explicit target
// replaces it).
func levelOf(c *imgd.Compress) (level, bool) {
	if c.Target != nil {
		return level{}, false
	}
	lv, ok := levels[c.Quality]
	return lv, ok
}

// gain is what a level maximises: similarity minus what the bytes cost.
func (lv level) gain(c candidate) float64 { return c.score - c.bpp/lv.lambda }

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
	px := float64(en.j.im.Width()) * float64(en.j.im.Height())
	c := candidate{format: en.format, quality: q, data: data, score: score, bpp: 8 * float64(len(data)) / px}
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
	target := targetFor(c)
	var best candidate
	var err error
	switch f {
	case imgd.FormatPNG:
		best, err = en.png(target, c.MaxBytes)
	case imgd.FormatGIF:
		best, err = en.at(0) // GIF has no quality knob: one palette encode
	default:
		best, err = en.search(c)
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

// search finds a lossy format's encoding: for a level the quality with
// the level's best trade-off (not under its floor), for a target the
// smallest quality that reaches it; when that is over max_bytes, the
// largest quality that fits. With max_bytes alone, the largest that fits.
func (en *encoder) search(c *imgd.Compress) (candidate, error) {
	lo, hi := qualityRange[en.format][0], qualityRange[en.format][1]
	if target := targetFor(c); target > 0 {
		var q int
		var err error
		if lv, ok := levelOf(c); ok {
			q, err = en.bestTradeoff(lv)
		} else {
			_, q, err = en.lowestPassing(lo, hi, firstGuess[en.format], func(c candidate) float64 { return distortionScale(c.score) },
				distortionScale(target))
			q = min(q, hi) // none passes: the best this format can do
		}
		if err != nil {
			return candidate{}, err
		}
		best, err := en.at(q)
		if err != nil || c.MaxBytes == 0 || len(best.data) <= c.MaxBytes {
			return best, err
		}
		hi = q
	}
	if c.MaxBytes == 0 {
		return en.at(hi)
	}
	// The highest quality tested that fits (none at lo: the caller
	// reports that the smallest is too big).
	fits, _, err := en.lowestPassing(lo, hi, (lo+hi)/2, func(c candidate) float64 { return math.Log(float64(len(c.data))) },
		math.Log(float64(c.MaxBytes)+0.5))
	if err != nil {
		return candidate{}, err
	}
	return en.at(max(fits, lo))
}

// bestTradeoff's search: the distance between its first two probes
// (while the best is at an end of what was tried, the next probe goes
// twice as far each time), how closely it brackets the peak (the gain is
// flat near it, so 3 steps either side costs little), and at most how
// many encodes it makes before keeping the best so far. Chosen by
// replaying the search on calibration data (docs/compression.md): about
// 5.5 encodes per image on average.
const (
	tradeoffStep      = 6
	tradeoffTolerance = 3
	tradeoffEncodes   = 6
)

// bestTradeoff returns the quality that maximises lv.gain, then raised to
// the lowest quality that reaches lv.floor when it is under it. The gain
// rises with the quality up to one maximum and falls after it (SSIM grows
// ever more slowly with the bytes, the bytes ever faster with the
// quality), so once a probe has lower probes on both sides the maximum is
// bracketed, and parabolic interpolation through the three narrows it to
// tradeoffTolerance steps in two or three encodes.
func (en *encoder) bestTradeoff(lv level) (int, error) {
	lo, hi := qualityRange[en.format][0], qualityRange[en.format][1]
	first := min(max(firstGuess[en.format], lo), hi)
	for _, q := range []int{first, min(first+tradeoffStep, hi)} {
		if _, err := en.at(q); err != nil {
			return 0, err
		}
	}
	best := first
	for step := 2 * tradeoffStep; ; step *= 2 {
		qs := slices.Sorted(maps.Keys(en.tried))
		i := 0
		for k, q := range qs {
			if lv.gain(en.tried[q]) > lv.gain(en.tried[qs[i]]) {
				i = k
			}
		}
		best = qs[i]
		var next int
		switch {
		case len(qs) >= tradeoffEncodes, i == len(qs)-1 && best == hi, i == 0 && best == lo:
			next = -1 // the best is at a clamp
		case i == len(qs)-1:
			next = min(best+step, hi)
		case i == 0:
			next = max(best-step, lo)
		default:
			next = parabolaPeak(qs[i-1], best, qs[i+1], func(q int) float64 { return lv.gain(en.tried[q]) })
		}
		if next < 0 {
			break
		}
		if _, err := en.at(next); err != nil {
			return 0, err
		}
	}
	if en.tried[best].score >= lv.floor || best == hi {
		return best, nil
	}
	// Raise it to the floor, starting from what the probes already tell:
	// the lowest quality tried that passes and the highest under it that
	// fails; the first new probe interpolates between them.
	fail, ok := best, hi+1
	for q, c := range en.tried {
		if q > best && c.score >= lv.floor {
			ok = min(ok, q)
		}
	}
	for q, c := range en.tried {
		if q > fail && q < ok && c.score < lv.floor {
			fail = q
		}
	}
	guess := fail + searchTolerance
	if ok <= hi {
		f, o := distortionScale(en.tried[fail].score), distortionScale(en.tried[ok].score)
		guess = fail + int(math.Ceil((distortionScale(lv.floor)-f)/(o-f)*float64(ok-fail)))
	}
	_, ok, err := en.lowestPassing(fail+1, min(ok, hi), guess, func(c candidate) float64 { return distortionScale(c.score) },
		distortionScale(lv.floor))
	return min(ok, hi), err
}

// parabolaPeak is the next quality to try between a < b < c, where g(b)
// is at least g(a) and g(c): the peak of the parabola through the three
// points, kept strictly inside (a, c) and off b; -1 when a and c are
// within 2·tradeoffTolerance, so b is known closely enough.
func parabolaPeak(a, b, c int, g func(int) float64) int {
	if c-a <= 2*tradeoffTolerance {
		return -1
	}
	fa, fb, fc := g(a), g(b), g(c)
	ba, bc := float64(b-a), float64(b-c)
	num := ba*ba*(fb-fc) - bc*bc*(fb-fa)
	den := ba*(fb-fc) - bc*(fb-fa)
	q := (a + c) / 2
	if den != 0 {
		q = int(math.Round(float64(b) - 0.5*num/den))
	}
	q = min(max(q, a+1), c-1)
	if q == b { // probe the wider side's middle instead
		if b-a > c-b {
			q = (a + b) / 2
		} else {
			q = (b + c + 1) / 2
		}
	}
	return q
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
