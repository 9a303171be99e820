package dither

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/imgd/imgd"
)

// FuzzApply dithers random images up to 64×64 with random options. Apply
// must not panic; it must reject exactly the invalid options, with
// CodeInvalidArgument; otherwise every pixel must be an allowed colour and
// alpha unchanged.
//
// The inputs: w and h (mod 65), alpha (4 bands, else 3), method (an index
// into imgd.DitherMethods; one past the end is an unknown name), levels
// (used as given, so also out of range), palette (three bytes a colour;
// used when levels is 0, or with levels when both is set), flags
// (1 serpentine, 2 linear), and seed for the pixels.
func FuzzApply(f *testing.F) {
	f.Add(uint8(16), uint8(9), false, uint8(0), int16(2), []byte(nil), false, uint8(0), uint64(1))
	f.Add(uint8(64), uint8(64), true, uint8(1), int16(0), []byte{0, 0, 0, 255, 255, 255}, false, uint8(3), uint64(2))
	f.Add(uint8(33), uint8(1), true, uint8(8), int16(256), []byte(nil), false, uint8(2), uint64(3))
	f.Add(uint8(1), uint8(40), false, uint8(11), int16(0), []byte{0x0f, 0x38, 0x0f, 0x9b, 0xbc, 0x0f}, false, uint8(1), uint64(4))
	f.Add(uint8(7), uint8(7), false, uint8(12), int16(2), []byte(nil), false, uint8(0), uint64(5))
	f.Add(uint8(7), uint8(7), false, uint8(3), int16(1), []byte(nil), false, uint8(0), uint64(6))
	f.Add(uint8(7), uint8(7), false, uint8(3), int16(4), []byte{1, 2, 3}, true, uint8(0), uint64(7))
	f.Add(uint8(0), uint8(7), true, uint8(5), int16(3), []byte(nil), false, uint8(3), uint64(8))
	f.Fuzz(func(t *testing.T, w, h uint8, alpha bool, method uint8, levels int16, palette []byte, both bool, flags uint8, seed uint64) {
		width, height, bands := int(w)%65, int(h)%65, 3
		if alpha {
			bands = 4
		}
		names := append(slices.Clone(imgd.DitherMethods), "no-such-method")
		opt := Options{
			Method:     names[int(method)%len(names)],
			Serpentine: flags&1 != 0,
			Linear:     flags&2 != 0,
		}
		s := paletteSetup{name: "fuzz"}
		if len(palette) >= 3 {
			for i := 0; i+3 <= len(palette); i += 3 {
				opt.Palette = append(opt.Palette, imgd.RGBA{R: palette[i], G: palette[i+1], B: palette[i+2], A: palette[i]})
			}
			s.palette = opt.Palette
		}
		if opt.Palette == nil || both {
			opt.Levels = int(levels)
			s.levels = opt.Levels
		}

		rng := rand.New(rand.NewPCG(seed, seed>>32))
		in := make([]byte, width*height*bands)
		for i := range in {
			in[i] = byte(rng.UintN(256))
		}
		out := slices.Clone(in)
		err := Apply(out, width, height, bands, opt)

		valid := opt.Method != "no-such-method" &&
			(opt.Levels == 0) != (len(opt.Palette) == 0) &&
			(opt.Levels == 0 || opt.Levels >= 2 && opt.Levels <= 256) &&
			len(opt.Palette) <= MaxPaletteColors
		if !valid {
			if e, ok := errors.AsType[*imgd.Error](err); !ok || e.Code != imgd.CodeInvalidArgument {
				t.Fatalf("Apply(%+v) = %v, want an *imgd.Error with code %s", opt, err, imgd.CodeInvalidArgument)
			}
			if !slices.Equal(out, in) {
				t.Fatalf("Apply(%+v) failed but changed pix", opt)
			}
			return
		}
		if err != nil {
			t.Fatalf("Apply(%+v) = %v, want nil", opt, err)
		}
		checkOutput(t, opt.Method, in, out, bands, s.allowed())
	})
}
