package imgd_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imgd/imgd"
)

// TestParsePipelineDefaults parses each operation with as few parameters as
// it accepts and checks the canonical JSON: every default filled in, keys
// sorted.
func TestParsePipelineDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"resize width only", `[{"op":"resize","width":300}]`,
			`[{"enlarge":false,"fit":"inside","gravity":"centre","op":"resize","width":300}]`},
		{"resize height only", `[{"op":"resize","height":200}]`,
			`[{"enlarge":false,"fit":"inside","gravity":"centre","height":200,"op":"resize"}]`},
		{"resize every parameter", `[{"op":"resize","width":30,"height":20,"fit":"contain","gravity":"north-east","enlarge":true,"background":"#FF000080"}]`,
			`[{"background":"#ff000080","enlarge":true,"fit":"contain","gravity":"north-east","height":20,"op":"resize","width":30}]`},
		{"resize opaque background", `[{"op":"resize","width":30,"fit":"contain","background":"fff"}]`,
			`[{"background":"#ffffff","enlarge":false,"fit":"contain","gravity":"centre","op":"resize","width":30}]`},
		{"crop", `[{"op":"crop","width":10,"height":20}]`,
			`[{"height":20,"op":"crop","width":10,"x":0,"y":0}]`},
		{"crop with offset", `[{"op":"crop","x":5,"y":6,"width":10,"height":20}]`,
			`[{"height":20,"op":"crop","width":10,"x":5,"y":6}]`},
		{"rotate", `[{"op":"rotate"}]`, `[{"angle":0,"op":"rotate"}]`},
		{"rotate with background", `[{"op":"rotate","angle":30,"background":"White"}]`,
			`[{"angle":30,"background":"#ffffff","op":"rotate"}]`},
		{"flip", `[{"op":"flip"}]`, `[{"direction":"horizontal","op":"flip"}]`},
		{"flip vertical", `[{"op":"flip","direction":"Vertical"}]`, `[{"direction":"vertical","op":"flip"}]`},
		{"auto_orient", `[{"op":"auto_orient"}]`, `[{"op":"auto_orient"}]`},
		{"grayscale", `[{"op":"grayscale"}]`, `[{"op":"grayscale"}]`},
		{"convert jpeg", `[{"op":"convert","format":"jpeg"}]`,
			`[{"format":"jpeg","lossless":false,"op":"convert","progressive":false,"quality":80,"strip":true}]`},
		{"convert webp", `[{"op":"convert","format":"webp"}]`,
			`[{"format":"webp","lossless":false,"op":"convert","progressive":false,"quality":80,"strip":true}]`},
		{"convert avif", `[{"op":"convert","format":"avif"}]`,
			`[{"format":"avif","lossless":false,"op":"convert","progressive":false,"quality":60,"strip":true}]`},
		{"convert png", `[{"op":"convert","format":"png"}]`,
			`[{"format":"png","lossless":false,"op":"convert","progressive":false,"strip":true}]`},
		{"convert gif", `[{"op":"convert","format":"gif"}]`,
			`[{"format":"gif","lossless":false,"op":"convert","progressive":false,"strip":true}]`},
		{"convert tiff", `[{"op":"convert","format":"tiff"}]`,
			`[{"format":"tiff","lossless":false,"op":"convert","progressive":false,"strip":true}]`},
		{"convert png with quality", `[{"op":"convert","format":"png","quality":50}]`,
			`[{"format":"png","lossless":false,"op":"convert","progressive":false,"quality":50,"strip":true}]`},
		{"convert every parameter", `[{"op":"convert","format":"webp","quality":1,"lossless":true,"progressive":true,"strip":false}]`,
			`[{"format":"webp","lossless":true,"op":"convert","progressive":true,"quality":1,"strip":false}]`},
		{"convert strip null", `[{"op":"convert","format":"jpeg","strip":null}]`,
			`[{"format":"jpeg","lossless":false,"op":"convert","progressive":false,"quality":80,"strip":true}]`},
		{"dither", `[{"op":"dither"}]`,
			`[{"linear":false,"method":"floyd-steinberg","op":"dither","palette":"bw","serpentine":false}]`},
		{"dither levels", `[{"op":"dither","levels":4}]`,
			`[{"levels":4,"linear":false,"method":"floyd-steinberg","op":"dither","serpentine":false}]`},
		{"dither levels bounds", `[{"op":"dither","levels":2},{"op":"dither","levels":256}]`,
			`[{"levels":2,"linear":false,"method":"floyd-steinberg","op":"dither","serpentine":false},` +
				`{"levels":256,"linear":false,"method":"floyd-steinberg","op":"dither","serpentine":false}]`},
		{"dither named palette", `[{"op":"dither","method":"atkinson","palette":"PICO8","serpentine":true,"linear":true}]`,
			`[{"linear":true,"method":"atkinson","op":"dither","palette":"pico8","serpentine":true}]`},
		{"dither colour palette", `[{"op":"dither","palette":["#FFF","#000000ff","transparent"]}]`,
			`[{"linear":false,"method":"floyd-steinberg","op":"dither","palette":["#ffffff","#000000","#000000"],"serpentine":false}]`},
		{"responsive", `[{"op":"responsive","widths":[640,320,640],"formats":["WEBP","jpg"]}]`,
			`[{"enlarge":false,"formats":["webp","jpeg"],"op":"responsive","quality":"high","widths":[320,640]}]`},
		{"compress", `[{"op":"compress"}]`, `[{"format":"auto","op":"compress","quality":"high","strip":true}]`},
		{"detect_orientation", `[{"op":"detect_orientation"}]`, `[{"fix":false,"min_confidence":0.5,"op":"detect_orientation"}]`},
		{"deskew", `[{"op":"deskew"}]`, `[{"max_angle":15,"op":"deskew"}]`},
		{"several steps", `[{"op":"auto_orient"},{"op":"grayscale"},{"op":"convert","format":"png"}]`,
			`[{"op":"auto_orient"},{"op":"grayscale"},{"format":"png","lossless":false,"op":"convert","progressive":false,"strip":true}]`},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		p, err := imgd.ParsePipeline([]byte(tc.in))
		if err == nil {
			for _, s := range p {
				covered[s.Op()] = true
			}
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err != nil {
				t.Fatalf("ParsePipeline(%q) error: %v", tc.in, err)
			}
			if got := string(p.Canonical()); got != tc.want {
				t.Errorf("ParsePipeline(%q).Canonical() = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	for _, op := range imgd.OpNames() {
		if !covered[op] {
			t.Errorf("operation %q has no row in TestParsePipelineDefaults", op)
		}
	}
}

func TestParsePipelineAliases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // canonical form of the same pipeline written without aliases
	}{
		{"gravity center", `[{"op":"resize","width":9,"gravity":"center"}]`, `[{"op":"resize","width":9,"gravity":"centre"}]`},
		{"gravity CENTER", `[{"op":"resize","width":9,"gravity":"CENTER"}]`, `[{"op":"resize","width":9,"gravity":"centre"}]`},
		{"gravity smart", `[{"op":"resize","width":9,"gravity":"smart"}]`, `[{"op":"resize","width":9,"gravity":"attention"}]`},
		{"gravity upper case", `[{"op":"resize","width":9,"gravity":"North-West"}]`, `[{"op":"resize","width":9,"gravity":"north-west"}]`},
		{"fit upper case", `[{"op":"resize","width":9,"fit":"COVER"}]`, `[{"op":"resize","width":9,"fit":"cover"}]`},
		{"format jpg", `[{"op":"convert","format":"jpg"}]`, `[{"op":"convert","format":"jpeg"}]`},
		{"format JPG", `[{"op":"convert","format":"JPG"}]`, `[{"op":"convert","format":"jpeg"}]`},
		{"format tif", `[{"op":"convert","format":"tif"}]`, `[{"op":"convert","format":"tiff"}]`},
		{"format WebP", `[{"op":"convert","format":"WebP"}]`, `[{"op":"convert","format":"webp"}]`},
		{"method fs", `[{"op":"dither","method":"fs"}]`, `[{"op":"dither","method":"floyd-steinberg"}]`},
		{"method FS", `[{"op":"dither","method":"FS"}]`, `[{"op":"dither","method":"floyd-steinberg"}]`},
		{"method jjn", `[{"op":"dither","method":"jjn"}]`, `[{"op":"dither","method":"jarvis-judice-ninke"}]`},
		{"method bayer", `[{"op":"dither","method":"bayer"}]`, `[{"op":"dither","method":"bayer4"}]`},
		{"method halftone", `[{"op":"dither","method":"halftone"}]`, `[{"op":"dither","method":"clustered-dot"}]`},
		{"palette BW", `[{"op":"dither","palette":"BW"}]`, `[{"op":"dither","palette":"bw"}]`},
		{"direction BOTH", `[{"op":"flip","direction":"BOTH"}]`, `[{"op":"flip","direction":"both"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := imgd.ParsePipeline([]byte(tc.in))
			if err != nil {
				t.Fatalf("ParsePipeline(%q) error: %v", tc.in, err)
			}
			want := imgd.MustParsePipeline(tc.want)
			if g, w := string(got.Canonical()), string(want.Canonical()); g != w {
				t.Errorf("ParsePipeline(%q).Canonical() = %s, want %s", tc.in, g, w)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParsePipeline(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParsePipelineErrors(t *testing.T) {
	t.Parallel()
	many := "[" + strings.Repeat(`{"op":"grayscale"},`, imgd.MaxSteps) + `{"op":"grayscale"}]`
	tests := []struct {
		name  string
		in    string
		field string
	}{
		{"object, not an array", `{"op":"resize","width":3}`, "pipeline"},
		{"string", `"resize"`, "pipeline"},
		{"not JSON", `[{"op":"resize"`, "pipeline"},
		{"no input", ``, "pipeline"},
		{"null", `null`, "pipeline"},
		{"empty", `[]`, "pipeline"},
		{"too many steps", many, "pipeline"},
		{"step not an object", `[42]`, "steps[0]"},
		{"step null", `[{"op":"grayscale"},null]`, "steps[1]"},
		{"missing op", `[{"width":3}]`, "steps[0].op"},
		{"empty op", `[{"op":""}]`, "steps[0].op"},
		{"op not a string", `[{"op":7}]`, "steps[0].op"},
		{"unknown op", `[{"op":"grayscale"},{"op":"sharpen"}]`, "steps[1].op"},
		{"op case matters", `[{"op":"Resize","width":3}]`, "steps[0].op"},
		{"unknown parameter", `[{"op":"resize","width":3,"widht":4}]`, "steps[0].widht"},
		{"parameter of an op without any", `[{"op":"grayscale","amount":1}]`, "steps[0].amount"},
		{"string for int", `[{"op":"resize","width":"300"}]`, "steps[0].width"},
		{"fraction for int", `[{"op":"crop","width":1.5,"height":2}]`, "steps[0].width"},
		{"string for bool", `[{"op":"resize","width":3,"enlarge":"yes"}]`, "steps[0].enlarge"},
		{"number for string", `[{"op":"resize","width":3,"fit":3}]`, "steps[0].fit"},
		{"string for number", `[{"op":"rotate","angle":"90"}]`, "steps[0].angle"},
		{"string for strip", `[{"op":"convert","format":"png","strip":"no"}]`, "steps[0].strip"},
		{"quality 101", `[{"op":"convert","format":"jpeg","quality":101}]`, "steps[0].quality"},
		{"quality -1", `[{"op":"convert","format":"jpeg","quality":-1}]`, "steps[0].quality"},
		{"levels 1", `[{"op":"dither","levels":1}]`, "steps[0].levels"},
		{"levels 257", `[{"op":"dither","levels":257}]`, "steps[0].levels"},
		{"levels -2", `[{"op":"dither","levels":-2}]`, "steps[0].levels"},
		{"width -1", `[{"op":"resize","width":-1}]`, "steps[0].width"},
		{"height -1", `[{"op":"resize","width":3,"height":-1}]`, "steps[0].height"},
		{"width too large", `[{"op":"resize","width":100001}]`, "steps[0].width"},
		{"width and height 0", `[{"op":"resize","width":0,"height":0}]`, "steps[0].width"},
		{"resize without size", `[{"op":"resize","fit":"cover"}]`, "steps[0].width"},
		{"unknown fit", `[{"op":"resize","width":3,"fit":"stretch"}]`, "steps[0].fit"},
		{"unknown gravity", `[{"op":"resize","width":3,"gravity":"up"}]`, "steps[0].gravity"},
		{"bad background", `[{"op":"resize","width":3,"background":"#12"}]`, "steps[0].background"},
		{"crop width 0", `[{"op":"crop","height":3}]`, "steps[0].width"},
		{"crop x -1", `[{"op":"crop","x":-1,"width":3,"height":3}]`, "steps[0].x"},
		{"rotate angle out of range", `[{"op":"rotate","angle":3601}]`, "steps[0].angle"},
		{"rotate bad background", `[{"op":"rotate","angle":1,"background":"red"}]`, "steps[0].background"},
		{"unknown direction", `[{"op":"flip","direction":"diagonal"}]`, "steps[0].direction"},
		{"convert without format", `[{"op":"convert"}]`, "steps[0].format"},
		{"convert to a read-only format", `[{"op":"convert","format":"heic"}]`, "steps[0].format"},
		{"unknown dither method", `[{"op":"dither","method":"random"}]`, "steps[0].method"},
		{"convert not last", `[{"op":"convert","format":"png"},{"op":"grayscale"}]`, "steps[0].op"},
		{"convert twice", `[{"op":"grayscale"},{"op":"convert","format":"png"},{"op":"convert","format":"jpeg"}]`, "steps[1].op"},
		{"palette unknown name", `[{"op":"dither","palette":"c64"}]`, "steps[0].palette"},
		{"palette empty name", `[{"op":"dither","palette":""}]`, "steps[0].palette"},
		{"palette null", `[{"op":"dither","palette":null}]`, "steps[0].palette"},
		{"palette too few colours", `[{"op":"dither","palette":["#000000"]}]`, "steps[0].palette"},
		{"palette no colours", `[{"op":"dither","palette":[]}]`, "steps[0].palette"},
		{"palette too many colours", `[{"op":"dither","palette":[` + strings.Repeat(`"#000000",`, 256) + `"#ffffff"]}]`, "steps[0].palette"},
		{"palette bad hex", `[{"op":"dither","palette":["#000000","#gggggg"]}]`, "steps[0].palette"},
		{"palette not a list of strings", `[{"op":"dither","palette":[0,1]}]`, "steps[0].palette"},
		{"levels and palette", `[{"op":"dither","levels":4,"palette":"bw"}]`, "steps[0].levels"},
		{"levels and colour palette", `[{"op":"dither","palette":["#000","#fff"],"levels":2}]`, "steps[0].levels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := imgd.ParsePipeline([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParsePipeline(%q) = %s, want an error for field %q", tc.in, p.Canonical(), tc.field)
			}
			e, ok := errors.AsType[*imgd.Error](err)
			if !ok {
				t.Fatalf("ParsePipeline(%q) error = %#v, want an *imgd.Error", tc.in, err)
			}
			if e.Code != imgd.CodeInvalidArgument || e.Field != tc.field {
				t.Errorf("ParsePipeline(%q) error code, field = %q, %q, want %q, %q (message %q)",
					tc.in, e.Code, e.Field, imgd.CodeInvalidArgument, tc.field, e.Message)
			}
			if e.Message == "" {
				t.Errorf("ParsePipeline(%q) error has no message", tc.in)
			}
			if got, want := imgd.MessageOf(err), tc.field+": "+e.Message; got != want {
				t.Errorf("MessageOf(ParsePipeline(%q)) = %q, want %q", tc.in, got, want)
			}
			if p != nil {
				t.Errorf("ParsePipeline(%q) = %v with an error, want nil", tc.in, p)
			}
		})
	}
}

// TestParsePipelineErrorMessages pins a few messages that tell the user what
// to write instead.
func TestParsePipelineErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string // substrings of MessageOf
	}{
		{"unknown op lists the known ones", `[{"op":"blur"}]`, imgd.OpNames()},
		{"unknown parameter lists the known ones", `[{"op":"crop","w":1}]`, []string{"height", "width", "x", "y"}},
		{"wrong type names the type", `[{"op":"resize","width":"300"}]`, []string{"must be an integer", "string"}},
		{"range gives the bad value", `[{"op":"convert","format":"jpeg","quality":101}]`, []string{"1..100", "101"}},
		{"levels range", `[{"op":"dither","levels":257}]`, []string{"2..256", "257"}},
		{"unknown palette lists the names", `[{"op":"dither","palette":"c64"}]`, imgd.PaletteNames()},
		{"palette size", `[{"op":"dither","palette":["#000"]}]`, []string{"2..256", "got 1"}},
		{"palette colour index", `[{"op":"dither","palette":["#000","#fff","nope"]}]`, []string{"colour 2", `"nope"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := imgd.ParsePipeline([]byte(tc.in))
			msg := imgd.MessageOf(err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("MessageOf(ParsePipeline(%q)) = %q, want it to contain %q", tc.in, msg, w)
				}
			}
		})
	}
}

// TestParsePipelineKeepsCause checks that a JSON syntax error stays
// available to the log as the cause.
func TestParsePipelineKeepsCause(t *testing.T) {
	t.Parallel()
	const in = `[{"op":`
	_, err := imgd.ParsePipeline([]byte(in))
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Errorf("ParsePipeline(%q) = %v, want a *json.SyntaxError in its chain", in, err)
	}
}

func TestCanonicalKeyOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b string
	}{
		{"resize", `[{"op":"resize","width":300,"height":200,"fit":"cover"}]`,
			`[{"fit":"cover","height":200,"width":300,"op":"resize"}]`},
		{"crop", `[{"op":"crop","x":1,"y":2,"width":3,"height":4}]`, `[{"height":4,"width":3,"y":2,"x":1,"op":"crop"}]`},
		{"convert", `[{"op":"convert","format":"webp","quality":70,"lossless":false}]`,
			`[{"lossless":false,"quality":70,"format":"webp","op":"convert"}]`},
		{"dither", `[{"op":"dither","method":"atkinson","levels":3,"serpentine":true}]`,
			`[{"serpentine":true,"levels":3,"op":"dither","method":"atkinson"}]`},
		{"whitespace", `[{"op":"flip","direction":"vertical"}]`, "[ {\n\t\"op\" : \"flip\" ,\r\n \"direction\":\"vertical\" } ]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := imgd.MustParsePipeline(tc.a), imgd.MustParsePipeline(tc.b)
			if ga, gb := string(a.Canonical()), string(b.Canonical()); ga != gb {
				t.Errorf("Canonical(%q) = %s, want %s, the Canonical of %q", tc.b, gb, ga, tc.a)
			}
			if ha, hb := a.Hash(), b.Hash(); ha != hb {
				t.Errorf("Hash(%q) = %s, want %s, the Hash of %q", tc.b, hb, ha, tc.a)
			}
		})
	}
}

func TestHashEqualForEqualPipelines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		implicit, explicit string
	}{
		{"resize", `[{"op":"resize","width":300}]`,
			`[{"op":"resize","width":300,"height":0,"fit":"inside","gravity":"centre","enlarge":false,"background":""}]`},
		{"resize aliases", `[{"op":"resize","width":300,"gravity":"smart"}]`, `[{"op":"resize","width":300,"gravity":"attention"}]`},
		{"resize colour spelling", `[{"op":"resize","width":3,"fit":"contain","background":"#fff"}]`,
			`[{"op":"resize","width":3,"fit":"contain","background":"#FFFFFFFF"}]`},
		{"crop", `[{"op":"crop","width":3,"height":4}]`, `[{"op":"crop","x":0,"y":0,"width":3,"height":4}]`},
		{"rotate", `[{"op":"rotate"}]`, `[{"op":"rotate","angle":360}]`},
		{"rotate negative", `[{"op":"rotate","angle":270}]`, `[{"op":"rotate","angle":-90}]`},
		{"rotate negative zero", `[{"op":"rotate","angle":0}]`, `[{"op":"rotate","angle":-0}]`},
		{"rotate minus a full turn", `[{"op":"rotate","angle":0}]`, `[{"op":"rotate","angle":-360}]`},
		{"rotate number spelling", `[{"op":"rotate","angle":90}]`, `[{"op":"rotate","angle":9e1}]`},
		{"flip", `[{"op":"flip"}]`, `[{"op":"flip","direction":"horizontal"}]`},
		{"convert jpeg", `[{"op":"convert","format":"jpeg"}]`,
			`[{"op":"convert","format":"jpg","quality":80,"lossless":false,"progressive":false,"strip":true}]`},
		{"convert avif", `[{"op":"convert","format":"avif"}]`, `[{"op":"convert","format":"avif","quality":60}]`},
		{"convert png", `[{"op":"convert","format":"png"}]`, `[{"op":"convert","format":"png","quality":0}]`},
		{"dither", `[{"op":"dither"}]`,
			`[{"op":"dither","method":"floyd-steinberg","palette":"bw","serpentine":false,"linear":false}]`},
		{"dither levels", `[{"op":"dither","levels":4}]`, `[{"op":"dither","method":"fs","levels":4}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := imgd.MustParsePipeline(tc.implicit), imgd.MustParsePipeline(tc.explicit)
			if ha, hb := a.Hash(), b.Hash(); ha != hb {
				t.Errorf("Hash(%q) = %s (canonical %s), want %s (canonical %s), the Hash of %q",
					tc.explicit, hb, b.Canonical(), ha, a.Canonical(), tc.implicit)
			}
		})
	}
}

func TestHashDiffersForDifferentPipelines(t *testing.T) {
	t.Parallel()
	pipelines := []string{
		`[{"op":"resize","width":300}]`,
		`[{"op":"resize","width":301}]`,
		`[{"op":"resize","height":300}]`,
		`[{"op":"resize","width":300,"fit":"cover"}]`,
		`[{"op":"resize","width":300,"enlarge":true}]`,
		`[{"op":"resize","width":300,"fit":"contain","background":"#000"}]`,
		`[{"op":"resize","width":300,"fit":"contain","background":"#00000000"}]`,
		`[{"op":"crop","width":3,"height":4}]`,
		`[{"op":"crop","width":4,"height":3}]`,
		`[{"op":"rotate","angle":90}]`,
		`[{"op":"rotate","angle":90.001}]`,
		`[{"op":"flip"}]`,
		`[{"op":"flip","direction":"both"}]`,
		`[{"op":"grayscale"}]`,
		`[{"op":"auto_orient"}]`,
		`[{"op":"grayscale"},{"op":"auto_orient"}]`,
		`[{"op":"auto_orient"},{"op":"grayscale"}]`,
		`[{"op":"grayscale"},{"op":"grayscale"}]`,
		`[{"op":"convert","format":"jpeg"}]`,
		`[{"op":"convert","format":"jpeg","quality":81}]`,
		`[{"op":"convert","format":"jpeg","progressive":true}]`,
		`[{"op":"convert","format":"jpeg","strip":false}]`,
		`[{"op":"convert","format":"webp"}]`,
		`[{"op":"convert","format":"webp","lossless":true}]`,
		`[{"op":"dither"}]`,
		`[{"op":"dither","palette":"gray4"}]`,
		`[{"op":"dither","palette":["#000000","#ffffff"]}]`,
		`[{"op":"dither","palette":["#ffffff","#000000"]}]`,
		`[{"op":"dither","levels":2}]`,
		`[{"op":"dither","method":"atkinson"}]`,
		`[{"op":"dither","serpentine":true}]`,
		`[{"op":"dither","linear":true}]`,
	}
	seen := map[string]string{}
	for _, in := range pipelines {
		h := imgd.MustParsePipeline(in).Hash()
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Errorf("Hash(%q) = %q, want 64 lower-case hex digits", in, h)
		}
		if prev, dup := seen[h]; dup {
			t.Errorf("Hash(%q) = Hash(%q) = %s, want different hashes", in, prev, h)
		}
		seen[h] = in
	}
}

// TestHashIsSHA256OfCanonical pins the hash function: stored hashes must not
// change between versions.
func TestHashIsSHA256OfCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // printf '%s' CANONICAL | sha256sum
	}{
		{"grayscale", `[{"op":"grayscale"}]`, "f2030457e5a337c5971a553961d3ac75f90330b3380c49da90efd0a1442522e4"},
		{"resize", `[{"width":300,"op":"resize"}]`, "53393b9be1e91b5e6c010b77120421f8dfc2b452bdf0d556fee06ac51b4b7462"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := imgd.MustParsePipeline(tc.in).Hash(); got != tc.want {
				t.Errorf("Hash(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestPipelineJSONRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
	}{
		{"resize", `[{"op":"resize","width":300,"gravity":"smart","background":"#abc"}]`},
		{"every op", `[{"op":"auto_orient"},{"op":"crop","x":1,"y":2,"width":30,"height":40},{"op":"rotate","angle":-90},` +
			`{"op":"flip","direction":"vertical"},{"op":"grayscale"},{"op":"resize","height":20,"fit":"fill"},` +
			`{"op":"dither","method":"bayer8","levels":3},{"op":"convert","format":"jpg","strip":false}]`},
		{"colour palette", `[{"op":"dither","palette":["#123","#456789","#abcdef80"]}]`},
		{"named palette", `[{"op":"dither","palette":"Gameboy"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := imgd.MustParsePipeline(tc.in)
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatalf("json.Marshal(ParsePipeline(%q)) error: %v", tc.in, err)
			}
			if got, want := string(data), string(p.Canonical()); got != want {
				t.Errorf("json.Marshal(ParsePipeline(%q)) = %s, want the canonical form %s", tc.in, got, want)
			}
			var q imgd.Pipeline
			if err := json.Unmarshal(data, &q); err != nil {
				t.Fatalf("json.Unmarshal(%s) error: %v", data, err)
			}
			if got, want := string(q.Canonical()), string(data); got != want {
				t.Errorf("json.Unmarshal(%s).Canonical() = %s, want %s", data, got, want)
			}
			if diff := cmp.Diff(p, q); diff != "" {
				t.Errorf("json.Unmarshal(%s) mismatch (-want +got):\n%s", data, diff)
			}

			// Inside another document, as tasks store it.
			type task struct {
				ID       string        `json:"id"`
				Pipeline imgd.Pipeline `json:"pipeline"`
			}
			doc, err := json.Marshal(task{ID: "t1", Pipeline: p})
			if err != nil {
				t.Fatalf("json.Marshal(task) error: %v", err)
			}
			var back task
			if err := json.Unmarshal(doc, &back); err != nil {
				t.Fatalf("json.Unmarshal(%s) error: %v", doc, err)
			}
			if got, want := string(back.Pipeline.Canonical()), string(p.Canonical()); got != want {
				t.Errorf("json.Unmarshal(%s).Pipeline.Canonical() = %s, want %s", doc, got, want)
			}
		})
	}
}

func TestPipelineUnmarshalJSONValidates(t *testing.T) {
	t.Parallel()
	const in = `{"pipeline":[{"op":"convert","format":"jpeg","quality":101}]}`
	var doc struct {
		Pipeline imgd.Pipeline `json:"pipeline"`
	}
	err := json.Unmarshal([]byte(in), &doc)
	e, ok := errors.AsType[*imgd.Error](err)
	if !ok || e.Field != "steps[0].quality" || e.Code != imgd.CodeInvalidArgument {
		t.Errorf("json.Unmarshal(%q) = %v, want an *imgd.Error with field steps[0].quality and code %s", in, err, imgd.CodeInvalidArgument)
	}
}

func TestRotateAngle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string // angle as JSON
		want float64
	}{
		{"zero", "0", 0},
		{"negative zero", "-0", 0},
		{"ninety", "90", 90},
		{"minus ninety", "-90", 270},
		{"four fifty", "450", 90},
		{"three sixty", "360", 0},
		{"minus three sixty", "-360", 0},
		{"seven twenty", "720", 0},
		{"limit", "3600", 0},
		{"minus limit", "-3600", 0},
		{"minus one eighty", "-180", 180},
		{"fraction", "45.5", 45.5},
		{"rounded to thousandths", "12.3456", 12.346},
		{"rounds up to a full turn", "359.9996", 0},
		{"tiny negative", "-0.0001", 0},
		{"tiny positive", "0.0004", 0},
		{"negative fraction", "-0.5", 359.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := `[{"op":"rotate","angle":` + tc.in + `}]`
			p, err := imgd.ParsePipeline([]byte(in))
			if err != nil {
				t.Fatalf("ParsePipeline(%q) error: %v", in, err)
			}
			r, ok := p[0].(*imgd.Rotate)
			if !ok {
				t.Fatalf("ParsePipeline(%q)[0] = %T, want *imgd.Rotate", in, p[0])
			}
			if r.Angle != tc.want {
				t.Errorf("ParsePipeline(%q)[0].Angle = %v, want %v", in, r.Angle, tc.want)
			}
			want := string(imgd.MustParsePipeline(`[{"op":"rotate","angle":` + jsonNumber(tc.want) + `}]`).Canonical())
			if got := string(p.Canonical()); got != want {
				t.Errorf("ParsePipeline(%q).Canonical() = %s, want %s", in, got, want)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want imgd.Format // "" when Output is nil
	}{
		{"no convert", `[{"op":"grayscale"}]`, ""},
		{"convert", `[{"op":"grayscale"},{"op":"convert","format":"jpg"}]`, imgd.FormatJPEG},
		{"only convert", `[{"op":"convert","format":"gif"}]`, imgd.FormatGIF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got imgd.Format
			if c := imgd.MustParsePipeline(tc.in).Output(); c != nil {
				got = c.Format
			}
			if got != tc.want {
				t.Errorf("ParsePipeline(%q).Output().Format = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := imgd.Pipeline(nil).Output(); got != nil {
		t.Errorf("Pipeline(nil).Output() = %v, want nil", got)
	}
}

func TestOpNamesSorted(t *testing.T) {
	t.Parallel()
	got := imgd.OpNames()
	if !slices.IsSorted(got) {
		t.Errorf("OpNames() = %q, want sorted", got)
	}
	for _, op := range []string{"auto_orient", "convert", "crop", "dither", "flip", "grayscale", "resize", "rotate"} {
		if !slices.Contains(got, op) {
			t.Errorf("OpNames() = %q, want it to contain %q", got, op)
		}
	}
}

func FuzzParsePipeline(f *testing.F) {
	for _, s := range []string{
		`[{"op":"resize","width":300}]`,
		`[{"op":"resize","width":30,"height":20,"fit":"contain","gravity":"smart","enlarge":true,"background":"#FF000080"}]`,
		`[{"op":"crop","x":5,"y":6,"width":10,"height":20}]`,
		`[{"op":"rotate","angle":-90.0005,"background":"transparent"}]`,
		`[{"op":"rotate","angle":-0}]`,
		`[{"op":"flip","direction":"both"}]`,
		`[{"op":"auto_orient"},{"op":"grayscale"}]`,
		`[{"op":"convert","format":"jpg","quality":100,"strip":null}]`,
		`[{"op":"convert","format":"png","quality":0,"progressive":true}]`,
		`[{"op":"dither","method":"fs","palette":["#fff","#000000ff","#12345678"]}]`,
		`[{"op":"dither","levels":256,"serpentine":true,"linear":true}]`,
		`[{"op":"dither","palette":"PICO8"}]`,
		`[{"op":"convert","format":"png"},{"op":"grayscale"}]`,
		`[null]`, `[]`, `{}`, `null`, `[{"op":7}]`, `[{"op":"resize","width":1e400}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := imgd.ParsePipeline(data)
		if err != nil {
			e, ok := errors.AsType[*imgd.Error](err)
			if !ok || e.Code != imgd.CodeInvalidArgument {
				t.Fatalf("ParsePipeline(%q) error = %#v, want an *imgd.Error with code %s", data, err, imgd.CodeInvalidArgument)
			}
			if e.Field != "pipeline" && !strings.HasPrefix(e.Field, "steps[") {
				t.Fatalf("ParsePipeline(%q) error field = %q, want pipeline or steps[i]…", data, e.Field)
			}
			return
		}
		if len(p) == 0 || len(p) > imgd.MaxSteps {
			t.Fatalf("ParsePipeline(%q) has %d steps, want 1..%d", data, len(p), imgd.MaxSteps)
		}
		c := p.Canonical()
		// Every parameter is non-negative once normalised (angles in
		// [0, 360)), so a minus sign means two spellings of one pipeline.
		if strings.Contains(string(c), ":-") {
			t.Fatalf("Canonical(ParsePipeline(%q)) = %s, want no negative numbers (nor -0)", data, c)
		}
		q, err := imgd.ParsePipeline(c)
		if err != nil {
			t.Fatalf("ParsePipeline(%q) ok, but its canonical form %s does not parse: %v", data, c, err)
		}
		if c2 := q.Canonical(); string(c2) != string(c) {
			t.Fatalf("Canonical(ParsePipeline(%s)) = %s, want %s (input %q)", c, c2, c, data)
		}
		if q.Hash() != p.Hash() {
			t.Fatalf("Hash(ParsePipeline(%s)) = %s, want %s (input %q)", c, q.Hash(), p.Hash(), data)
		}
	})
}

func jsonNumber(f float64) string {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return string(b)
}
