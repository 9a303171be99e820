package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// carveDir extracts the WebP and JPEG files stored uncompressed in the Qt
// resource (.rcc) files of dir: GCompris ships its pictures that way.
// Files are named <resource>_<n>.<ext>; small ones (icons) are skipped.
func carveDir(dir, out string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.rcc"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no .rcc files in %s (%v)", dir, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	total := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		base := strings.TrimSuffix(filepath.Base(f), ".rcc")
		for i, img := range carve(b) {
			name := fmt.Sprintf("%s_%03d.%s", base, i, img.ext)
			if err := os.WriteFile(filepath.Join(out, name), img.data, 0o644); err != nil {
				return err
			}
			total++
		}
	}
	fmt.Printf("carved %d images into %s\n", total, out)
	return nil
}

type carved struct {
	data []byte
	ext  string
}

const minCarved = 15_000

func carve(b []byte) []carved {
	var out []carved
	// A WebP file is a RIFF chunk that gives its own length.
	for i := 0; ; {
		s := bytes.Index(b[i:], []byte("RIFF"))
		if s < 0 {
			break
		}
		s += i
		if s+12 <= len(b) && string(b[s+8:s+12]) == "WEBP" {
			n := int(binary.LittleEndian.Uint32(b[s+4:])) + 8
			if s+n <= len(b) && n >= minCarved {
				out = append(out, carved{b[s : s+n], "webp"})
			}
			i = s + max(n, 4)
			continue
		}
		i = s + 4
	}
	// A JPEG runs from its start marker to the last end marker before the
	// next start marker; a damaged cut fails to decode and is skipped.
	soi := []byte{0xff, 0xd8, 0xff}
	for i := 0; ; {
		s := bytes.Index(b[i:], soi)
		if s < 0 {
			break
		}
		s += i
		next := bytes.Index(b[s+3:], soi)
		lim := len(b)
		if next >= 0 {
			lim = s + 3 + next
		}
		e := bytes.LastIndex(b[s:lim], []byte{0xff, 0xd9})
		if e > 0 && e+2 >= minCarved {
			out = append(out, carved{b[s : s+e+2], "jpg"})
		}
		i = lim
	}
	return out
}
