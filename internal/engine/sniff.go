package engine

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/imgd/imgd"
)

// Sniff names the image format from the first bytes of b. The file name
// and any declared media type are never consulted. Anything that is not a
// format imgd decodes is CodeUnsupported.
func Sniff(b []byte) (imgd.Format, error) {
	switch {
	case len(b) == 0:
		return "", imgd.Errorf(imgd.CodeUnsupported, "empty file")
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return imgd.FormatJPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return imgd.FormatPNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return imgd.FormatGIF, nil
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return imgd.FormatWebP, nil
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		return imgd.FormatTIFF, nil
	case isBMP(b):
		return imgd.FormatBMP, nil
	case bytes.HasPrefix(b, []byte{0xFF, 0x0A}) || bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return imgd.FormatJXL, nil
	}
	if f, ok := sniffISOBMFF(b); ok {
		return f, nil
	}
	if isSVG(b) {
		return imgd.FormatSVG, nil
	}
	return "", imgd.Errorf(imgd.CodeUnsupported, "not an image format imgd reads (JPEG, PNG, WebP, AVIF, HEIC, GIF, TIFF, BMP, SVG, JPEG XL)")
}

// sniffISOBMFF recognises AVIF and HEIC from the ftyp box's major and
// compatible brands.
func sniffISOBMFF(b []byte) (imgd.Format, bool) {
	if len(b) < 16 || !bytes.Equal(b[4:8], []byte("ftyp")) {
		return "", false
	}
	size := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if size < 16 || size > len(b) || size > 4096 {
		size = min(len(b), 4096)
	}
	var avif, heic bool
	for off := 8; off+4 <= size; off += 4 {
		if off == 12 { // minor version, not a brand
			continue
		}
		switch string(b[off : off+4]) {
		case "avif", "avis":
			avif = true
		case "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1":
			heic = true
		}
	}
	switch {
	case avif:
		return imgd.FormatAVIF, true
	case heic:
		return imgd.FormatHEIC, true
	}
	return "", false
}

// isSVG accepts XML whose first element is <svg, after an optional BOM, XML
// declaration, comments and doctype, within the first 4 KiB.
func isSVG(b []byte) bool {
	b = b[:min(len(b), 4096)]
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case bytes.HasPrefix(b, []byte("<!--")):
			i := bytes.Index(b, []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[i+3:]
		case bytes.HasPrefix(b, []byte("<!DOCTYPE")) || bytes.HasPrefix(b, []byte("<!doctype")):
			// The doctype may hold an internal subset in brackets.
			depth := 0
			i := 0
			for ; i < len(b); i++ {
				if b[i] == '[' {
					depth++
				} else if b[i] == ']' {
					depth--
				} else if b[i] == '>' && depth <= 0 {
					break
				}
			}
			if i >= len(b) {
				return false
			}
			b = b[i+1:]
		default:
			return bytes.HasPrefix(b, []byte("<svg")) && len(b) > 4 &&
				strings.IndexByte(" >/\n\t\r:", b[4]) >= 0
		}
	}
}

// isBMP checks the "BM" signature and a known DIB header size, so that
// text starting with "BM" is not taken for a bitmap.
func isBMP(b []byte) bool {
	if len(b) < 26 || b[0] != 'B' || b[1] != 'M' {
		return false
	}
	switch binary.LittleEndian.Uint32(b[14:18]) {
	case 12, 16, 40, 52, 56, 64, 108, 124:
		return true
	}
	return false
}
