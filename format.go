package imgd

// Format is an image file format, named as in pipelines and API responses.
type Format string

const (
	FormatJPEG Format = "jpeg"
	FormatPNG  Format = "png"
	FormatWebP Format = "webp"
	FormatAVIF Format = "avif"
	FormatHEIC Format = "heic"
	FormatGIF  Format = "gif"
	FormatTIFF Format = "tiff"
	FormatBMP  Format = "bmp"
	FormatSVG  Format = "svg"
	FormatJXL  Format = "jxl"
)

// OutputFormats are the formats a pipeline can write.
var OutputFormats = []Format{FormatJPEG, FormatPNG, FormatWebP, FormatAVIF, FormatGIF, FormatTIFF}

// CanWrite reports whether f is an output format.
func (f Format) CanWrite() bool {
	for _, o := range OutputFormats {
		if o == f {
			return true
		}
	}
	return false
}

// MediaType is the IANA media type of f.
func (f Format) MediaType() string {
	switch f {
	case FormatJPEG:
		return "image/jpeg"
	case FormatPNG:
		return "image/png"
	case FormatWebP:
		return "image/webp"
	case FormatAVIF:
		return "image/avif"
	case FormatHEIC:
		return "image/heic"
	case FormatGIF:
		return "image/gif"
	case FormatTIFF:
		return "image/tiff"
	case FormatBMP:
		return "image/bmp"
	case FormatSVG:
		return "image/svg+xml"
	case FormatJXL:
		return "image/jxl"
	case FormatJSON:
		return "application/json"
	}
	return "application/octet-stream"
}

// Ext is the usual file name extension of f, without the dot.
func (f Format) Ext() string {
	switch f {
	case FormatJPEG:
		return "jpg"
	case FormatTIFF:
		return "tif"
	case "":
		return "bin"
	}
	return string(f)
}

// SupportsAlpha reports whether f can store an alpha channel.
func (f Format) SupportsAlpha() bool {
	switch f {
	case FormatJPEG, FormatBMP:
		return false
	}
	return true
}

// SupportsAnimation reports whether f can store several frames with timing.
func (f Format) SupportsAnimation() bool { return f == FormatGIF || f == FormatWebP }

// ImageInfo is what the engine reads from an image's header without decoding
// its pixels.
type ImageInfo struct {
	Format      Format `json:"format"`
	MediaType   string `json:"media_type"`
	Width       int    `json:"width"`  // upright: after the EXIF orientation is applied
	Height      int    `json:"height"` // one frame's height
	Frames      int    `json:"frames"` // 1 for still images
	Orientation int    `json:"orientation"`
	HasAlpha    bool   `json:"has_alpha"`
}
