package imgd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// FormatJSON is the format of a responsive task's result: its manifest
// (see NewManifest). No pipeline step writes it.
const FormatJSON Format = "json"

// Variant is one output of a responsive task: one width in one format.
// A variant that failed has an ErrorCode, no blob and no bytes; its Width
// is the width it was meant to have, its Height 0 and its Format the
// requested one (which may be "auto").
type Variant struct {
	Index     int    `json:"index"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Format    Format `json:"format"`
	MediaType string `json:"media_type,omitempty"`
	Bytes     int64  `json:"bytes"`
	BlobKey   string `json:"-"` // key in the BlobStore; "" when failed
	// Outputs holds what the encoding computed (e.g. compress's quality
	// and score); empty for none.
	Outputs      json.RawMessage `json:"outputs,omitempty"`
	ErrorCode    Code            `json:"error_code,omitempty"`
	ErrorMessage string          `json:"error_message,omitempty"`
}

// Failed reports whether the variant has an error instead of a blob.
func (v *Variant) Failed() bool { return v.ErrorCode != "" }

// validate checks the i-th variant of a result.
func (v *Variant) validate(i int) error {
	field := fmt.Sprintf("result.variants[%d]", i)
	switch {
	case v.Index != i:
		return fieldErr(field+".index", "must be %d (variants are stored in index order), got %d", i, v.Index)
	case v.Format == "":
		return fieldErr(field+".format", "is required")
	case len(v.Outputs) > 0 && !json.Valid(v.Outputs):
		return fieldErr(field+".outputs", "must be valid JSON")
	case v.Failed():
		if v.BlobKey != "" {
			return fieldErr(field+".blob_key", "must be empty for a failed variant")
		}
		return nil
	case v.Width <= 0 || v.Height <= 0:
		return fieldErr(field+".width", "width and height must be > 0, got %dx%d", v.Width, v.Height)
	case v.Bytes < 0:
		return fieldErr(field+".bytes", "must be >= 0, got %d", v.Bytes)
	}
	if _, err := ParseBlobKey(v.BlobKey); err != nil {
		return fieldErr(field+".blob_key", "%s", MessageOf(err))
	}
	return nil
}

// VariantURL is the API path of a task's variant.
func VariantURL(taskID string, index int) string {
	return "/api/v1/tasks/" + taskID + "/variants/" + strconv.Itoa(index)
}

// Srcset returns, for each format among the variants that succeeded, an
// HTML srcset string of its variants ("URL 320w, URL 640w"), narrowest
// first; url names each variant. Nil when none succeeded.
func Srcset(variants []Variant, url func(index int) string) map[Format]string {
	var out map[Format]string
	for _, v := range sortedByWidth(variants) {
		if v.Failed() {
			continue
		}
		if out == nil {
			out = map[Format]string{}
		}
		entry := url(v.Index) + " " + strconv.Itoa(v.Width) + "w"
		if s := out[v.Format]; s != "" {
			entry = s + ", " + entry
		}
		out[v.Format] = entry
	}
	return out
}

// sortedByWidth returns the variants ordered by width, then index.
func sortedByWidth(vs []Variant) []Variant {
	out := append([]Variant(nil), vs...)
	for i := 1; i < len(out); i++ { // insertion sort: at most 64 variants
		for j := i; j > 0 && (out[j].Width < out[j-1].Width ||
			out[j].Width == out[j-1].Width && out[j].Index < out[j-1].Index); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// Manifest is the JSON document a responsive task's result holds.
type Manifest struct {
	Variants []ManifestVariant `json:"variants"`
	Srcset   map[Format]string `json:"srcset"`
	Errors   []ManifestError   `json:"errors"`
	// Outputs is what the task's steps computed (result.outputs), e.g.
	// the widths the responsive step skipped.
	Outputs json.RawMessage `json:"outputs,omitempty"`
}

// ManifestVariant is a variant that succeeded, with where to get it.
type ManifestVariant struct {
	Index     int             `json:"index"`
	Width     int             `json:"width"`
	Height    int             `json:"height"`
	Format    Format          `json:"format"`
	MediaType string          `json:"media_type"`
	Bytes     int64           `json:"bytes"`
	URL       string          `json:"url"`
	Outputs   json.RawMessage `json:"outputs,omitempty"`
}

// ManifestError is a variant that failed.
type ManifestError struct {
	Index   int    `json:"index"`
	Width   int    `json:"width"`
	Format  Format `json:"format"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// NewManifest describes variants; url names each variant (VariantURL of
// the task for the API, a file name for imgd process). outputs is the
// task's result outputs, or nil.
func NewManifest(variants []Variant, outputs json.RawMessage, url func(index int) string) Manifest {
	m := Manifest{Variants: []ManifestVariant{}, Srcset: Srcset(variants, url), Errors: []ManifestError{}, Outputs: outputs}
	if m.Srcset == nil {
		m.Srcset = map[Format]string{}
	}
	for _, v := range variants {
		if v.Failed() {
			m.Errors = append(m.Errors, ManifestError{Index: v.Index, Width: v.Width, Format: v.Format,
				Code: v.ErrorCode, Message: v.ErrorMessage})
			continue
		}
		mt := v.MediaType
		if mt == "" {
			mt = v.Format.MediaType()
		}
		m.Variants = append(m.Variants, ManifestVariant{Index: v.Index, Width: v.Width, Height: v.Height,
			Format: v.Format, MediaType: mt, Bytes: v.Bytes, URL: url(v.Index), Outputs: v.Outputs})
	}
	return m
}

// VariantFileName is the file name of variant index of a set named base
// (e.g. "photo-320w-0.webp"), as imgd process writes them.
func VariantFileName(base string, v Variant) string {
	return fmt.Sprintf("%s-%dw-%d.%s", strings.TrimSuffix(base, "."), v.Width, v.Index, v.Format.Ext())
}
