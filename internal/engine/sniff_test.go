package engine

import (
	"path"
	"strings"
	"testing"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/imgtest"
)

// sniffLen is how much of a file callers such as the HTTP upload handler
// hold when they sniff; every format must be recognisable from it.
const sniffLen = 4096

// extFormats maps the extensions used in testdata to the format their
// contents must sniff as.
var extFormats = map[string]imgd.Format{
	".jpg":  imgd.FormatJPEG,
	".jpeg": imgd.FormatJPEG,
	".png":  imgd.FormatPNG,
	".gif":  imgd.FormatGIF,
	".webp": imgd.FormatWebP,
	".tif":  imgd.FormatTIFF,
	".tiff": imgd.FormatTIFF,
	".heic": imgd.FormatHEIC,
	".avif": imgd.FormatAVIF,
	".svg":  imgd.FormatSVG,
	".bmp":  imgd.FormatBMP,
	".jxl":  imgd.FormatJXL,
}

func TestSniffTestdata(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"photos", "png", "formats", "orientation", "documents"} {
		for _, rel := range imgtest.Files(t, dir) {
			t.Run(rel, func(t *testing.T) {
				t.Parallel()
				want, ok := extFormats[strings.ToLower(path.Ext(rel))]
				if !ok {
					t.Fatalf("%s: no expected format for extension %q; add it to extFormats", rel, path.Ext(rel))
				}
				b := imgtest.Read(t, rel)
				head := b[:min(len(b), sniffLen)]
				if got, err := Sniff(head); got != want || err != nil {
					t.Errorf("Sniff(first %d bytes of %s) = %q, %v, want %q, nil", len(head), rel, got, err, want)
				}
				if got, err := Sniff(b); got != want || err != nil {
					t.Errorf("Sniff(all of %s) = %q, %v, want %q, nil", rel, got, err, want)
				}
			})
		}
	}
}

// TestSniffBadNames checks that files whose name lies are judged by their
// bytes.
func TestSniffBadNames(t *testing.T) {
	t.Parallel()
	for _, rel := range []string{"bad/empty.jpg", "bad/html-named.png", "bad/text-named.jpg"} {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			b := imgtest.Read(t, rel)
			got, err := Sniff(b)
			if got != "" || imgd.CodeOf(err) != imgd.CodeUnsupported {
				t.Errorf("Sniff(%s) = %q, %v, want \"\" and code %s", rel, got, err, imgd.CodeUnsupported)
			}
		})
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	const svgNS = `xmlns="http://www.w3.org/2000/svg"`
	tests := []struct {
		name string
		in   string
		want imgd.Format // "" means CodeUnsupported
	}{
		// Not images.
		{"empty", "", ""},
		{"one byte", "\xff", ""},
		{"two bytes of JPEG", "\xff\xd8", ""},
		{"text", "Copyright (c) The Regents of the University of California.\n", ""},
		{"HTML", "<!DOCTYPE html>\n<html><head><title>x</title></head><body><svg></svg></body></html>\n", ""},
		{"HTML without doctype", "<html><body>hi</body></html>", ""},
		{"WAVE", "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00", ""},
		{"RIFF too short", "RIFF\x00\x00\x00\x00WEB", ""},
		{"MP4 video", "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free", ""},
		{"QuickTime", "\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", ""},
		{"avif only as minor version", "\x00\x00\x00\x18ftypisomavifmp42isom", ""},
		{"ftyp too short", "\x00\x00\x00\x0cftypavif", ""},
		{"PDF", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", ""},
		{"zip", "PK\x03\x04\x14\x00\x00\x00\x08\x00", ""},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", ""},
		{"short BM", "BM\x00\x00", ""},
		{"XML, not SVG", `<?xml version="1.0" encoding="UTF-8"?>` + "\n<note><to>Tove</to></note>", ""},
		{"XML declaration unterminated", `<?xml version="1.0" <svg ` + svgNS + `>`, ""},
		{"comment unterminated", `<!-- <svg ` + svgNS + `>`, ""},
		{"doctype unterminated", `<!DOCTYPE svg [ <!ENTITY a "b"> <svg>`, ""},
		{"svgfoo", `<svgfoo ` + svgNS + `>`, ""},
		{"svg only", `<svg`, ""},
		{"svg after another element", `<g><svg ` + svgNS + `></svg></g>`, ""},
		{"svg in text", `hello <svg ` + svgNS + `>`, ""},
		{"upper-case SVG element", `<SVG ` + svgNS + `>`, ""},

		// Images.
		{"JPEG", "\xff\xd8\xff\xe0\x00\x10JFIF\x00", imgd.FormatJPEG},
		{"JPEG, three bytes", "\xff\xd8\xff", imgd.FormatJPEG},
		{"PNG", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", imgd.FormatPNG},
		{"GIF87a", "GIF87a\x01\x00\x01\x00", imgd.FormatGIF},
		{"GIF89a", "GIF89a\x01\x00\x01\x00", imgd.FormatGIF},
		{"WebP", "RIFF\x24\x00\x00\x00WEBPVP8 ", imgd.FormatWebP},
		{"TIFF little-endian", "II*\x00\x08\x00\x00\x00", imgd.FormatTIFF},
		{"TIFF big-endian", "MM\x00*\x00\x00\x00\x08", imgd.FormatTIFF},
		{"BMP", "BM" + strings.Repeat("\x00", 12) + "\x28\x00\x00\x00" + strings.Repeat("\x00", 8), imgd.FormatBMP},
		{"text starting with BM", "BMW cars are made in Bavaria, text not bitmap", ""},
		{"SVG self-closing", "<svg/>", imgd.FormatSVG},
		{"JPEG XL codestream", "\xff\x0a\xfa\x7f", imgd.FormatJXL},
		{"JPEG XL container", "\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl ", imgd.FormatJXL},
		{"AVIF", "\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", imgd.FormatAVIF},
		{"AVIF sequence", "\x00\x00\x00\x18ftypavis\x00\x00\x00\x00avismsf1", imgd.FormatAVIF},
		{"AVIF as compatible brand", "\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", imgd.FormatAVIF},
		{"HEIC", "\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf", imgd.FormatHEIC},
		{"HEIF mif1", "\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf", imgd.FormatHEIC},
		{"ftyp size larger than the data", "\x00\x00\x10\x00ftypavif\x00\x00\x00\x00", imgd.FormatAVIF},
		{"SVG", `<svg ` + svgNS + ` width="1" height="1"/>`, imgd.FormatSVG},
		{"SVG with newline after the name", "<svg\n" + svgNS + ">", imgd.FormatSVG},
		{"SVG with namespace prefix", `<svg:svg xmlns:svg="http://www.w3.org/2000/svg">`, imgd.FormatSVG},
		{"SVG leading whitespace", "\n\t  <svg>", imgd.FormatSVG},
		{"SVG with XML declaration, comment and doctype",
			`<?xml version="1.0" encoding="UTF-8" standalone="no"?>` + "\n" +
				`<!-- Generator: Adobe Illustrator 16.0.0, SVG Export Plug-In -->` + "\n" +
				`<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">` + "\n" +
				`<svg version="1.1" ` + svgNS + ` width="10" height="10"></svg>`, imgd.FormatSVG},
		{"SVG with BOM", "\xef\xbb\xbf<svg " + svgNS + "></svg>", imgd.FormatSVG},
		{"SVG with BOM and declaration", "\xef\xbb\xbf<?xml version=\"1.0\"?>\r\n<svg " + svgNS + "></svg>", imgd.FormatSVG},
		{"SVG with lower-case doctype", `<!doctype svg><svg ` + svgNS + `>`, imgd.FormatSVG},
		{"SVG with internal subset", `<!DOCTYPE svg [ <!ENTITY a "<b>"> ]>` + "\n" + `<svg ` + svgNS + `>&a;</svg>`, imgd.FormatSVG},
		{"SVG with several comments", `<!-- a --><!-- b -- c --> <svg>`, imgd.FormatSVG},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Sniff([]byte(tc.in))
			if tc.want == "" {
				if got != "" || imgd.CodeOf(err) != imgd.CodeUnsupported {
					t.Errorf("Sniff(%q) = %q, %v, want \"\" and an error with code %s", tc.in, got, err, imgd.CodeUnsupported)
				}
				return
			}
			if got != tc.want || err != nil {
				t.Errorf("Sniff(%q) = %q, %v, want %q, nil", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestSniffSVGWithin4KiB checks that the SVG element must start within the
// first 4 KiB: a long comment pushes it out.
func TestSniffSVGWithin4KiB(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		padding int
		want    imgd.Format
	}{
		{"inside", 4000, imgd.FormatSVG},
		{"outside", 5000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := "<!--" + strings.Repeat("x", tc.padding) + "--><svg>"
			if got, _ := Sniff([]byte(in)); got != tc.want {
				t.Errorf("Sniff(comment of %d bytes + <svg>) = %q, want %q", tc.padding, got, tc.want)
			}
		})
	}
}

var sniffFormats = map[imgd.Format]bool{
	imgd.FormatJPEG: true, imgd.FormatPNG: true, imgd.FormatGIF: true, imgd.FormatWebP: true,
	imgd.FormatTIFF: true, imgd.FormatBMP: true, imgd.FormatJXL: true, imgd.FormatAVIF: true,
	imgd.FormatHEIC: true, imgd.FormatSVG: true,
}

func FuzzSniff(f *testing.F) {
	for _, dir := range []string{"photos", "png", "formats", "orientation", "documents", "bad"} {
		for _, rel := range imgtest.Files(f, dir) {
			b := imgtest.Read(f, rel)
			f.Add(b[:min(len(b), 512)])
		}
	}
	for _, s := range []string{
		"", "\xff", "RIFF\x24\x00\x00\x00WAVE", "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
		"\x00\x00\x00\x08ftypavif\x00\x00\x00\x00avif", "\xef\xbb\xbf<?xml?><!--c--><!DOCTYPE svg [<!ENTITY a '>'>]><svg>",
		"<svgfoo>", "<!DOCTYPE", "<?", "<!--",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Sniff(b)
		if err != nil {
			if got != "" || imgd.CodeOf(err) != imgd.CodeUnsupported {
				t.Fatalf("Sniff(%q) = %q, %v, want \"\" with an error of code %s", b, got, err, imgd.CodeUnsupported)
			}
			return
		}
		if !sniffFormats[got] {
			t.Fatalf("Sniff(%q) = %q, nil, want a known format", b, got)
		}
		if got2, err2 := Sniff(b); got2 != got || err2 != nil {
			t.Fatalf("Sniff(%q) = %q, %v the second time, want %q, nil", b, got2, err2, got)
		}
	})
}
