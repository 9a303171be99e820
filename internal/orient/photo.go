package orient

import (
	"fmt"
	"math"
)

// Photos are scored by a linear model applied to each of the four ways the
// image could be turned back upright: score_k = w·f(turned back by k·90),
// and a softmax over the four scores, divided by a temperature fitted on
// held-out photos, is the probability of each answer. Scoring every
// candidate with the same weights makes the model rotation-consistent by
// construction; each upright training photo teaches all four classes.

// thumbSide is the side of the square thumbnail the features come from:
// the layout of colour and edges, not detail, tells up from down.
const thumbSide = 32

// gridSide is the number of blocks per side for the block features.
const gridSide = 4

// bands is the number of horizontal bands for the band features.
const bands = 8

// NumFeatures is the length of a candidate's feature vector.
const NumFeatures = gridSide*gridSide*6 + bands*5 + 1

// Thumb is an image reduced to thumbSide×thumbSide RGB floats in 0..1
// (stretched: the aspect ratio is kept apart, in Landscape).
type Thumb struct {
	px        [thumbSide * thumbSide][3]float64
	Landscape float64 // +1 wider than tall, -1 taller, 0 square (within 5 %)
}

// MakeThumb area-averages im (alpha on white) into a Thumb.
func MakeThumb(im Image) (Thumb, error) {
	if err := im.check(); err != nil {
		return Thumb{}, err
	}
	var t Thumb
	switch r := float64(im.Width) / float64(im.Height); {
	case r > 1.05:
		t.Landscape = 1
	case r < 1/1.05:
		t.Landscape = -1
	}
	for ty := range thumbSide {
		y0, y1 := cellBounds(ty, im.Height)
		for tx := range thumbSide {
			x0, x1 := cellBounds(tx, im.Width)
			var s [3]float64
			for y := y0; y < y1; y++ {
				row := im.Pix[(y*im.Width)*im.Bands:]
				for x := x0; x < x1; x++ {
					r, g, b := rgbAt(row[x*im.Bands:], im.Bands)
					s[0] += r
					s[1] += g
					s[2] += b
				}
			}
			n := float64((y1 - y0) * (x1 - x0) * 255)
			t.px[ty*thumbSide+tx] = [3]float64{s[0] / n, s[1] / n, s[2] / n}
		}
	}
	return t, nil
}

// cellBounds is the input range of thumbnail cell i along a side of n.
func cellBounds(i, n int) (int, int) {
	a := i * n / thumbSide
	b := max((i+1)*n/thumbSide, a+1)
	return min(a, n-1), min(b, n)
}

func rgbAt(p []byte, bands int) (r, g, b float64) {
	switch bands {
	case 1:
		return float64(p[0]), float64(p[0]), float64(p[0])
	case 2:
		v := float64(p[0])*float64(p[1])/255 + 255 - float64(p[1])
		return v, v, v
	case 3:
		return float64(p[0]), float64(p[1]), float64(p[2])
	}
	a := float64(p[3]) / 255
	return float64(p[0])*a + 255*(1-a), float64(p[1])*a + 255*(1-a), float64(p[2])*a + 255*(1-a)
}

// TurnBack returns the thumbnail of the image turned counter-clockwise by
// k·90 degrees: the upright picture if the image had been turned
// clockwise by k·90.
func (t Thumb) TurnBack(k int) Thumb {
	k = ((k % 4) + 4) % 4
	out := t
	for range k {
		var r Thumb
		r.Landscape = -out.Landscape
		// Counter-clockwise: the source's right column becomes the top row.
		for y := range thumbSide {
			for x := range thumbSide {
				r.px[y*thumbSide+x] = out.px[x*thumbSide+(thumbSide-1-y)]
			}
		}
		out = r
	}
	return out
}

// Mirror flips the thumbnail left-right (an upright photo stays upright).
func (t Thumb) Mirror() Thumb {
	out := t
	for y := range thumbSide {
		for x := range thumbSide {
			out.px[y*thumbSide+x] = t.px[y*thumbSide+thumbSide-1-x]
		}
	}
	return out
}

// Features describes the thumbnail as if it were upright: per block of a
// gridSide×gridSide grid the mean lightness and two opponent colours, the
// lightness spread, and the mean horizontal and vertical gradient
// magnitudes; the same means (without spread) per horizontal band, a
// finer top-to-bottom profile; then the aspect.
func (t Thumb) Features() []float64 {
	const cell = thumbSide / gridSide
	const band = thumbSide / bands
	var lum [thumbSide * thumbSide]float64
	for i, p := range t.px {
		lum[i] = (p[0] + p[1] + p[2]) / 3
	}
	// Per pixel: lightness, red-green, yellow-blue, |d/dx|, |d/dy|.
	var px [thumbSide * thumbSide][5]float64
	for y := range thumbSide {
		for x := range thumbSide {
			i := y*thumbSide + x
			p := t.px[i]
			v := [5]float64{lum[i], p[0] - p[1], (p[0]+p[1])/2 - p[2]}
			if x+1 < thumbSide {
				v[3] = math.Abs(lum[i+1] - lum[i])
			}
			if y+1 < thumbSide {
				v[4] = math.Abs(lum[i+thumbSide] - lum[i])
			}
			px[i] = v
		}
	}
	f := make([]float64, 0, NumFeatures)
	for by := range gridSide {
		for bx := range gridSide {
			var s [5]float64
			var l2 float64
			for y := by * cell; y < (by+1)*cell; y++ {
				for x := bx * cell; x < (bx+1)*cell; x++ {
					i := y*thumbSide + x
					for k, v := range px[i] {
						s[k] += v
					}
					l2 += lum[i] * lum[i]
				}
			}
			n := float64(cell * cell)
			l := s[0] / n
			f = append(f, l, s[1]/n, s[2]/n, math.Sqrt(math.Max(0, l2/n-l*l)), s[3]/n, s[4]/n)
		}
	}
	for b := range bands {
		var s [5]float64
		for i := b * band * thumbSide; i < (b+1)*band*thumbSide; i++ {
			for k, v := range px[i] {
				s[k] += v
			}
		}
		n := float64(band * thumbSide)
		for _, v := range s {
			f = append(f, v/n)
		}
	}
	return append(f, t.Landscape)
}

// Model is the photo scorer: standardisation, a linear part W and an
// optional hidden layer of tanh units (Hidden rows, HiddenBias, Out), and
// the temperature.
type Model struct {
	Mean, Std   []float64
	W           []float64
	Hidden      [][]float64
	HiddenBias  []float64
	Out         []float64
	Temperature float64
}

// Probabilities returns P(the image was turned clockwise by k·90), k=0..3.
func (m *Model) Probabilities(t Thumb) [4]float64 {
	var s [4]float64
	for k := range 4 {
		s[k] = m.Score(t.TurnBack(k).Features()) / m.Temperature
	}
	return softmax(s)
}

// Score is the raw upright score of one candidate's features.
func (m *Model) Score(f []float64) float64 {
	z := make([]float64, len(f))
	for i, v := range f {
		z[i] = (v - m.Mean[i]) / m.Std[i]
	}
	return m.ScoreStandardized(z)
}

// ScoreStandardized scores features already standardised by Mean and Std.
func (m *Model) ScoreStandardized(z []float64) float64 {
	var s float64
	for i, v := range z {
		s += m.W[i] * v
	}
	for h, row := range m.Hidden {
		a := m.HiddenBias[h]
		for i, v := range z {
			a += row[i] * v
		}
		s += m.Out[h] * math.Tanh(a)
	}
	return s
}

func softmax(s [4]float64) [4]float64 {
	mx := math.Max(math.Max(s[0], s[1]), math.Max(s[2], s[3]))
	var p [4]float64
	var z float64
	for k := range 4 {
		p[k] = math.Exp(s[k] - mx)
		z += p[k]
	}
	for k := range 4 {
		p[k] /= z
	}
	return p
}

// DetectPhoto scores im with the shipped photo model.
func DetectPhoto(im Image) (Result, error) {
	t, err := MakeThumb(im)
	if err != nil {
		return Result{}, err
	}
	if len(photoModel.W) != NumFeatures {
		return Result{}, fmt.Errorf("orient: the photo model has %d weights for %d features", len(photoModel.W), NumFeatures)
	}
	p := photoModel.Probabilities(t)
	best := 0
	for k := range 4 {
		if p[k] > p[best] {
			best = k
		}
	}
	return Result{Angle: best * 90, Confidence: math.Round(p[best]*1000) / 1000, Kind: KindPhoto,
		Method: "photo-model"}, nil
}
