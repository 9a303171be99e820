package imgd_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imgd/imgd"
)

func TestParseColor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want imgd.RGBA
	}{
		{"#fff", imgd.RGBA{255, 255, 255, 255}},
		{"#abc", imgd.RGBA{0xaa, 0xbb, 0xcc, 255}},
		{"#ABC", imgd.RGBA{0xaa, 0xbb, 0xcc, 255}},
		{"abc", imgd.RGBA{0xaa, 0xbb, 0xcc, 255}},
		{"#000", imgd.RGBA{0, 0, 0, 255}},
		{"#112233", imgd.RGBA{0x11, 0x22, 0x33, 255}},
		{"#A0b1C2", imgd.RGBA{0xa0, 0xb1, 0xc2, 255}},
		{"112233", imgd.RGBA{0x11, 0x22, 0x33, 255}},
		{"#11223344", imgd.RGBA{0x11, 0x22, 0x33, 0x44}},
		{"#ffffff00", imgd.RGBA{255, 255, 255, 0}},
		{"#000000ff", imgd.RGBA{0, 0, 0, 255}},
		{"11223344", imgd.RGBA{0x11, 0x22, 0x33, 0x44}},
		{"black", imgd.RGBA{0, 0, 0, 255}},
		{"white", imgd.RGBA{255, 255, 255, 255}},
		{"White", imgd.RGBA{255, 255, 255, 255}},
		{"transparent", imgd.RGBA{0, 0, 0, 0}},
		{"TRANSPARENT", imgd.RGBA{0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := imgd.ParseColor(tc.in)
			if err != nil {
				t.Fatalf("ParseColor(%q) error: %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseColor(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseColorErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"hash only", "#"},
		{"two digits", "#12"},
		{"four digits", "#1234"},
		{"five digits", "#12345"},
		{"seven digits", "#1234567"},
		{"nine digits", "#123456789"},
		{"not hex", "#ggg"},
		{"one bad digit", "#12345g"},
		{"two hashes", "##fff"},
		{"leading space", " #fff"},
		{"trailing space", "#fff "},
		{"sign", "+12345"},
		{"0x prefix", "0x1234"},
		{"underscore", "#12_345"},
		{"css function", "rgb(1,2,3)"},
		{"unknown name", "red"},
		{"multi-byte", "#ééé"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := imgd.ParseColor(tc.in)
			if err == nil {
				t.Fatalf("ParseColor(%q) = %v, want an error", tc.in, got)
			}
			if got != (imgd.RGBA{}) {
				t.Errorf("ParseColor(%q) = %v with error %v, want the zero colour", tc.in, got, err)
			}
		})
	}
}

func TestHex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    imgd.RGBA
		want string
	}{
		{imgd.RGBA{0, 0, 0, 255}, "#000000"},
		{imgd.RGBA{255, 255, 255, 255}, "#ffffff"},
		{imgd.RGBA{0x12, 0xab, 0x0f, 255}, "#12ab0f"},
		{imgd.RGBA{0, 0, 0, 0}, "#00000000"},
		{imgd.RGBA{0x12, 0xab, 0x0f, 0x80}, "#12ab0f80"},
		{imgd.RGBA{255, 255, 255, 254}, "#fffffffe"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if got := tc.c.Hex(); got != tc.want {
				t.Errorf("%v.Hex() = %q, want %q", tc.c, got, tc.want)
			}
		})
	}
}

// TestHexRoundTrip checks ParseColor(c.Hex()) == c over a grid of every
// channel, alpha included.
func TestHexRoundTrip(t *testing.T) {
	t.Parallel()
	values := []uint8{0, 1, 0x0f, 0x10, 0x7f, 0x80, 0xa5, 0xfe, 0xff}
	for _, r := range values {
		for _, g := range values {
			for _, b := range values {
				for _, a := range values {
					c := imgd.RGBA{r, g, b, a}
					got, err := imgd.ParseColor(c.Hex())
					if err != nil || got != c {
						t.Errorf("ParseColor(%q) = %v, %v, want %v, nil", c.Hex(), got, err, c)
					}
				}
			}
		}
	}
}

func TestNamedPaletteIsACopy(t *testing.T) {
	t.Parallel()
	for _, name := range imgd.PaletteNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			first, ok := imgd.NamedPalette(name)
			if !ok {
				t.Fatalf("NamedPalette(%q) = _, false, want true", name)
			}
			want := slices.Clone(first)
			for i := range first {
				first[i] = imgd.RGBA{1, 2, 3, 4}
			}
			second, _ := imgd.NamedPalette(name)
			if diff := cmp.Diff(want, second); diff != "" {
				t.Errorf("NamedPalette(%q) after mutating an earlier result (-want +got):\n%s", name, diff)
			}
			if len(second) > 0 && &first[0] == &second[0] {
				t.Errorf("NamedPalette(%q) returned the same backing array twice", name)
			}
		})
	}
}

func TestNamedPaletteUnknown(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "nope", "BW", " bw"} {
		if got, ok := imgd.NamedPalette(name); ok || got != nil {
			t.Errorf("NamedPalette(%q) = %v, %v, want nil, false", name, got, ok)
		}
	}
}

func TestPaletteNames(t *testing.T) {
	t.Parallel()
	got := imgd.PaletteNames()
	want := []string{"bw", "cga", "ega", "gameboy", "gray16", "gray4", "pico8", "websafe"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PaletteNames() mismatch (-want +got):\n%s", diff)
	}
	got[0] = "mutated"
	if again := imgd.PaletteNames(); again[0] != want[0] {
		t.Errorf("PaletteNames()[0] = %q after mutating an earlier result, want %q", again[0], want[0])
	}
}

// TestPalettesValid checks every named palette: 2..256 opaque colours, none
// repeated.
func TestPalettesValid(t *testing.T) {
	t.Parallel()
	for _, name := range imgd.PaletteNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, ok := imgd.NamedPalette(name)
			if !ok {
				t.Fatalf("NamedPalette(%q) = _, false, want true (listed by PaletteNames)", name)
			}
			if len(p) < 2 || len(p) > 256 {
				t.Errorf("len(NamedPalette(%q)) = %d, want 2..256", name, len(p))
			}
			seen := map[imgd.RGBA]int{}
			for i, c := range p {
				if c.A != 255 {
					t.Errorf("NamedPalette(%q)[%d] = %v, want alpha 255", name, i, c)
				}
				if j, dup := seen[c]; dup {
					t.Errorf("NamedPalette(%q)[%d] = %v repeats [%d]", name, i, c, j)
				}
				seen[c] = i
			}
		})
	}
}

func TestPaletteColours(t *testing.T) {
	t.Parallel()
	gray := func(vs ...uint8) []imgd.RGBA {
		p := make([]imgd.RGBA, len(vs))
		for i, v := range vs {
			p[i] = imgd.RGBA{v, v, v, 255}
		}
		return p
	}
	tests := []struct {
		name string
		want []imgd.RGBA
	}{
		{"bw", gray(0, 255)},
		{"gray4", gray(0, 85, 170, 255)},
		{"gray16", gray(0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _ := imgd.NamedPalette(tc.name)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NamedPalette(%q) mismatch (-want +got):\n%s", tc.name, diff)
			}
		})
	}
	web, _ := imgd.NamedPalette("websafe")
	if len(web) != 216 {
		t.Fatalf("len(NamedPalette(websafe)) = %d, want 216", len(web))
	}
	for i, c := range web {
		for _, v := range []uint8{c.R, c.G, c.B} {
			if v%0x33 != 0 {
				t.Errorf("NamedPalette(websafe)[%d] = %v, want channels that are multiples of 0x33", i, c)
			}
		}
	}
}

// TestDitherColors checks that a parsed dither step hands the engine the
// palette's colours.
func TestDitherColors(t *testing.T) {
	t.Parallel()
	pico8, _ := imgd.NamedPalette("pico8")
	tests := []struct {
		name string
		in   string
		want []imgd.RGBA
	}{
		{"default", `[{"op":"dither"}]`, []imgd.RGBA{{0, 0, 0, 255}, {255, 255, 255, 255}}},
		{"named", `[{"op":"dither","palette":"pico8"}]`, pico8},
		{"colours, alpha dropped", `[{"op":"dither","palette":["#102030","#40506070"]}]`,
			[]imgd.RGBA{{0x10, 0x20, 0x30, 255}, {0x40, 0x50, 0x60, 255}}},
		{"levels", `[{"op":"dither","levels":3}]`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := imgd.MustParsePipeline(tc.in)[0].(*imgd.Dither)
			if diff := cmp.Diff(tc.want, d.Colors()); diff != "" {
				t.Errorf("ParsePipeline(%q)[0].Colors() mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}
