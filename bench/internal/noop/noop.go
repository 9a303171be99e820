// Package noop holds what the service benchmarks share to measure the
// queue alone: tiny distinct images and a pipeline that barely works.
package noop

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strconv"

	"github.com/imgd/imgd"
	"github.com/imgd/imgd/internal/apiclient"
)

// Pipeline re-encodes an image as PNG: on an 8×8 image the engine's share
// is about 0.1 ms.
var Pipeline = imgd.MustParsePipeline(`[{"op":"convert","format":"png"}]`)

// UploadTiny uploads n distinct 8×8 PNGs, so that no task reuses another's
// result, and returns their ids.
func UploadTiny(cl *apiclient.Client, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
		for p := range 64 {
			img.Set(p%8, p/8, color.NRGBA{uint8(i), uint8(i >> 8), uint8(p), 255})
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		im, err := cl.Upload(context.Background(), &buf, "tiny"+strconv.Itoa(i)+".png")
		if err != nil {
			return nil, fmt.Errorf("upload tiny image: %w", err)
		}
		ids[i] = im.ID
	}
	return ids, nil
}
