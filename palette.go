package imgd

import "sort"

// Named dither palettes. The colours are data of the domain so that the
// pipeline validator, the dither package and the web page agree on them.
var namedPalettes = map[string][]RGBA{
	"bw":     {{0, 0, 0, 255}, {255, 255, 255, 255}},
	"gray4":  grayRamp(4),
	"gray16": grayRamp(16),
	// CGA mode 4, palette 1, high intensity: black, cyan, magenta, white.
	"cga": {{0, 0, 0, 255}, {0x55, 0xff, 0xff, 255}, {0xff, 0x55, 0xff, 255}, {0xff, 0xff, 0xff, 255}},
	// The 16 colours of the EGA/CGA text palette.
	"ega": {
		{0x00, 0x00, 0x00, 255}, {0x00, 0x00, 0xaa, 255}, {0x00, 0xaa, 0x00, 255}, {0x00, 0xaa, 0xaa, 255},
		{0xaa, 0x00, 0x00, 255}, {0xaa, 0x00, 0xaa, 255}, {0xaa, 0x55, 0x00, 255}, {0xaa, 0xaa, 0xaa, 255},
		{0x55, 0x55, 0x55, 255}, {0x55, 0x55, 0xff, 255}, {0x55, 0xff, 0x55, 255}, {0x55, 0xff, 0xff, 255},
		{0xff, 0x55, 0x55, 255}, {0xff, 0x55, 0xff, 255}, {0xff, 0xff, 0x55, 255}, {0xff, 0xff, 0xff, 255},
	},
	// The 216-colour web-safe cube (0x00, 0x33, … 0xff per channel).
	"websafe": cube(6),
	// The four greens of the original Game Boy screen.
	"gameboy": {{0x0f, 0x38, 0x0f, 255}, {0x30, 0x62, 0x30, 255}, {0x8b, 0xac, 0x0f, 255}, {0x9b, 0xbc, 0x0f, 255}},
	// PICO-8's 16 colours.
	"pico8": {
		{0x00, 0x00, 0x00, 255}, {0x1d, 0x2b, 0x53, 255}, {0x7e, 0x25, 0x53, 255}, {0x00, 0x87, 0x51, 255},
		{0xab, 0x52, 0x36, 255}, {0x5f, 0x57, 0x4f, 255}, {0xc2, 0xc3, 0xc7, 255}, {0xff, 0xf1, 0xe8, 255},
		{0xff, 0x00, 0x4d, 255}, {0xff, 0xa3, 0x00, 255}, {0xff, 0xec, 0x27, 255}, {0x00, 0xe4, 0x36, 255},
		{0x29, 0xad, 0xff, 255}, {0x83, 0x76, 0x9c, 255}, {0xff, 0x77, 0xa8, 255}, {0xff, 0xcc, 0xaa, 255},
	},
}

func grayRamp(n int) []RGBA {
	p := make([]RGBA, n)
	for i := range p {
		v := uint8((i*255 + (n-1)/2) / (n - 1))
		p[i] = RGBA{v, v, v, 255}
	}
	return p
}

func cube(n int) []RGBA {
	p := make([]RGBA, 0, n*n*n)
	for r := 0; r < n; r++ {
		for g := 0; g < n; g++ {
			for b := 0; b < n; b++ {
				p = append(p, RGBA{uint8(r * 255 / (n - 1)), uint8(g * 255 / (n - 1)), uint8(b * 255 / (n - 1)), 255})
			}
		}
	}
	return p
}

// NamedPalette returns a copy of the colours of a named palette.
func NamedPalette(name string) ([]RGBA, bool) {
	p, ok := namedPalettes[name]
	if !ok {
		return nil, false
	}
	return append([]RGBA(nil), p...), true
}

// PaletteNames lists the named palettes, sorted.
func PaletteNames() []string {
	names := make([]string, 0, len(namedPalettes))
	for n := range namedPalettes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
