package ssim

import "math"

// srgbToLinear maps an 8-bit sRGB value to linear light in 0..1.
var srgbToLinear = func() [256]float32 {
	var t [256]float32
	for i := range t {
		v := float64(i) / 255
		if v <= 0.04045 {
			v /= 12.92
		} else {
			v = math.Pow((v+0.055)/1.055, 2.4)
		}
		t[i] = float32(v)
	}
	return t
}()

// lumaViews returns im's linear luma reduced by k, or enlarged by e: one
// plane, or two for an image with alpha (composited over black, then over
// white).
func lumaViews(im Image, k, e int) []*Plane {
	w, h := im.W/k, im.H/k
	n := 1
	if im.hasAlpha() {
		n = 2
	}
	views := make([]*Plane, n)
	for i := range views {
		views[i] = &Plane{W: w, H: h, Pix: make([]float32, w*h)}
	}
	scale := 1 / float32(k*k)
	for oy := range h {
		for y := oy * k; y < (oy+1)*k; y++ {
			row := im.Pix[y*im.W*im.Bands:]
			for ox := range w {
				var black, white float32
				for x := ox * k; x < (ox+1)*k; x++ {
					b, wh := lumaAt(row[x*im.Bands:], im.Bands)
					black += b
					white += wh
				}
				views[0].Pix[oy*w+ox] += black * scale
				if n == 2 {
					views[1].Pix[oy*w+ox] += white * scale
				}
			}
		}
	}
	if e > 1 {
		for i, v := range views {
			views[i] = enlarge(v, e)
		}
	}
	return views
}

// enlarge repeats every sample e×e times.
func enlarge(p *Plane, e int) *Plane {
	out := &Plane{W: p.W * e, H: p.H * e, Pix: make([]float32, p.W*e*p.H*e)}
	for y := range out.H {
		src := p.Pix[(y/e)*p.W : (y/e+1)*p.W]
		dst := out.Pix[y*out.W : (y+1)*out.W]
		for x := range dst {
			dst[x] = src[x/e]
		}
	}
	return out
}

// lumaAt returns one pixel's linear luma composited over black and over
// white (equal when opaque).
func lumaAt(px []byte, bands int) (overBlack, overWhite float32) {
	var y float32
	if bands <= 2 {
		y = srgbToLinear[px[0]]
	} else {
		y = 0.2126*srgbToLinear[px[0]] + 0.7152*srgbToLinear[px[1]] + 0.0722*srgbToLinear[px[2]]
	}
	if bands == 2 || bands == 4 {
		a := float32(px[bands-1]) / 255
		return y * a, y*a + 1 - a
	}
	return y, y
}

// halve averages 2×2 blocks (the MS-SSIM downsampling), nil when nothing
// is left.
func halve(p *Plane) *Plane {
	w, h := p.W/2, p.H/2
	if w == 0 || h == 0 {
		return nil
	}
	out := &Plane{W: w, H: h, Pix: make([]float32, w*h)}
	for y := range h {
		r0 := p.Pix[2*y*p.W:]
		r1 := p.Pix[(2*y+1)*p.W:]
		for x := range w {
			out.Pix[y*w+x] = (r0[2*x] + r0[2*x+1] + r1[2*x] + r1[2*x+1]) / 4
		}
	}
	return out
}

// newRefStats computes the reference's window means and variances over
// the valid positions ((W-10)×(H-10)).
func newRefStats(x *Plane) *refStats {
	vw, vh := x.W-2*radius, x.H-2*radius
	hx := make([]float32, vw*x.H)
	hxx := make([]float32, vw*x.H)
	for y := range x.H {
		row := x.Pix[y*x.W : (y+1)*x.W]
		a, b := hx[y*vw:(y+1)*vw], hxx[y*vw:(y+1)*vw]
		for t, g := range window[:] {
			src := row[t : t+vw]
			for i, v := range src {
				a[i] += g * v
				b[i] += g * v * v
			}
		}
	}
	s := &refStats{x: x, mu: make([]float32, vw*vh), vv: make([]float32, vw*vh)}
	for y := range vh {
		mu := s.mu[y*vw : (y+1)*vw]
		vv := s.vv[y*vw : (y+1)*vw]
		for t, g := range window[:] {
			src, src2 := hx[(y+t)*vw:(y+t+1)*vw], hxx[(y+t)*vw:(y+t+1)*vw]
			src2 = src2[:len(src)]
			for i, v := range src {
				mu[i] += g * v
				vv[i] += g * src2[i]
			}
		}
		for i := range vw {
			vv[i] -= mu[i] * mu[i]
		}
	}
	return s
}

// compare returns the mean SSIM and the mean contrast-structure term of
// the reference stats s against the plane p of the same size.
func compare(s *refStats, p *Plane) (ssimMean, csMean float64) {
	x := s.x
	vw, vh := x.W-2*radius, x.H-2*radius
	hy := make([]float32, vw*x.H)
	hyy := make([]float32, vw*x.H)
	hxy := make([]float32, vw*x.H)
	for y := range x.H {
		xr := x.Pix[y*x.W : (y+1)*x.W]
		yr := p.Pix[y*p.W : (y+1)*p.W]
		o := y * vw
		a, b, c := hy[o:o+vw], hyy[o:o+vw], hxy[o:o+vw]
		for t, g := range window[:] {
			ys, xs := yr[t:t+vw], xr[t:t+vw]
			for i, v := range ys {
				gv := g * v
				a[i] += gv
				b[i] += gv * v
				c[i] += gv * xs[i]
			}
		}
	}
	muy := make([]float32, vw)
	vyy := make([]float32, vw)
	cxy := make([]float32, vw)
	var sumS, sumCS float64
	for y := range vh {
		clear(muy)
		clear(vyy)
		clear(cxy)
		for t, g := range window[:] {
			o := (y + t) * vw
			a, b, c := hy[o:o+vw], hyy[o:o+vw], hxy[o:o+vw]
			for i, v := range a {
				muy[i] += g * v
				vyy[i] += g * b[i]
				cxy[i] += g * c[i]
			}
		}
		mux, vxx := s.mu[y*vw:(y+1)*vw], s.vv[y*vw:(y+1)*vw]
		var rowS, rowCS float32
		for i := range vw {
			mx, my := mux[i], muy[i]
			sy := vyy[i] - my*my
			sxy := cxy[i] - mx*my
			cs := (2*sxy + c2) / (vxx[i] + sy + c2)
			l := (2*mx*my + c1) / (mx*mx + my*my + c1)
			rowS += l * cs
			rowCS += cs
		}
		sumS += float64(rowS)
		sumCS += float64(rowCS)
	}
	n := float64(vw * vh)
	return sumS / n, sumCS / n
}
