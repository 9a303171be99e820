package orient

import (
	"image"
	"image/draw"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// testdata resolves a path under the repository's testdata folder.
func testdata(rel string) string {
	return filepath.Join("..", "..", "testdata", rel)
}

// load decodes a test image with Go's decoders into grey (1 band) or RGB
// (3 bands) pixels.
func load(tb testing.TB, rel string, grey bool) Image {
	tb.Helper()
	f, err := os.Open(testdata(rel))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	src, _, err := image.Decode(f)
	if err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
	b := src.Bounds()
	if grey {
		g := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(g, g.Bounds(), src, b.Min, draw.Src)
		return Image{Pix: g.Pix, Width: b.Dx(), Height: b.Dy(), Bands: 1}
	}
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Bounds(), src, b.Min, draw.Src)
	rgb := make([]byte, 0, b.Dx()*b.Dy()*3)
	for i := 0; i < len(rgba.Pix); i += 4 {
		rgb = append(rgb, rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2])
	}
	return Image{Pix: rgb, Width: b.Dx(), Height: b.Dy(), Bands: 3}
}

// turn rotates im clockwise by a quarter turns, exactly.
func turn(im Image, quarters int) Image {
	out := im
	for range ((quarters % 4) + 4) % 4 {
		w, h, n := out.Width, out.Height, out.Bands
		r := Image{Pix: make([]byte, len(out.Pix)), Width: h, Height: w, Bands: n}
		for y := range h {
			for x := range w {
				// Clockwise: (x, y) goes to (h-1-y, x).
				copy(r.Pix[(x*h+(h-1-y))*n:][:n], out.Pix[(y*w+x)*n:][:n])
			}
		}
		out = r
	}
	return out
}

// skew rotates im clockwise by deg degrees about its centre, bilinear, on
// the same canvas, filling with white.
func skew(im Image, deg float64) Image {
	w, h, n := im.Width, im.Height, im.Bands
	out := Image{Pix: make([]byte, len(im.Pix)), Width: w, Height: h, Bands: n}
	s, c := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	for y := range h {
		for x := range w {
			// The source of an output pixel: rotate back counter-clockwise.
			dx, dy := float64(x)-cx, float64(y)-cy
			sx, sy := c*dx+s*dy+cx, -s*dx+c*dy+cy
			for k := range n {
				out.Pix[(y*w+x)*n+k] = bilinear(im, sx, sy, k)
			}
		}
	}
	return out
}

func bilinear(im Image, x, y float64, k int) byte {
	x0, y0 := int(math.Floor(x)), int(math.Floor(y))
	fx, fy := x-float64(x0), y-float64(y0)
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= im.Width || y >= im.Height {
			return 255
		}
		return float64(im.Pix[(y*im.Width+x)*im.Bands+k])
	}
	v := (at(x0, y0)*(1-fx)+at(x0+1, y0)*fx)*(1-fy) + (at(x0, y0+1)*(1-fx)+at(x0+1, y0+1)*fx)*fy
	return byte(math.Round(v))
}

// angleDiff is the distance between two angles in degrees, modulo 360.
func angleDiff(a, b float64) float64 {
	d := math.Abs(normDeg(a) - normDeg(b))
	return math.Min(d, 360-d)
}
