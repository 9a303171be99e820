package imgd

import (
	"fmt"
	"strconv"
	"strings"
)

// RGBA is an 8-bit sRGB colour with straight (non-premultiplied) alpha.
type RGBA struct{ R, G, B, A uint8 }

// Hex returns c as "#rrggbb", or "#rrggbbaa" when it is not opaque.
func (c RGBA) Hex() string {
	if c.A == 255 {
		return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
	}
	return fmt.Sprintf("#%02x%02x%02x%02x", c.R, c.G, c.B, c.A)
}

var namedColors = map[string]RGBA{
	"black":       {0, 0, 0, 255},
	"white":       {255, 255, 255, 255},
	"transparent": {0, 0, 0, 0},
}

// ParseColor reads "#rgb", "#rrggbb", "#rrggbbaa" (the # is optional) or
// one of the names black, white and transparent.
func ParseColor(s string) (RGBA, error) {
	if c, ok := namedColors[strings.ToLower(s)]; ok {
		return c, nil
	}
	h := strings.TrimPrefix(s, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 && len(h) != 8 {
		return RGBA{}, fmt.Errorf("not a colour: %q (want #rrggbb, #rrggbbaa or a name)", s)
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return RGBA{}, fmt.Errorf("not a colour: %q (want #rrggbb, #rrggbbaa or a name)", s)
	}
	if len(h) == 6 {
		return RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 255}, nil
	}
	return RGBA{uint8(v >> 24), uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}
