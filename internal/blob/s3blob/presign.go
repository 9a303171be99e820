package s3blob

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// MaxPresignTTL is the longest validity S3's signature version 4 allows a
// presigned URL.
const MaxPresignTTL = 7 * 24 * time.Hour

// PresignGet returns a URL that downloads the blob key without credentials
// until ttl has passed. The object's answer carries contentType,
// contentDisposition and cacheControl instead of what is stored with it
// (S3's response-* overrides, which are part of the signature): blobs are
// stored as application/octet-stream under their hash, and a download must
// keep its media type and file name.
//
// Presigning is a local computation: nothing is sent to S3, and a missing
// key is only noticed by whoever follows the URL. The URL names the
// endpoint of the blob URL, so clients must be able to reach that address.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration, contentType, contentDisposition, cacheControl string) (*url.URL, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 || ttl > MaxPresignTTL {
		return nil, fmt.Errorf("presign %s: validity %s is not in (0, %s]", key, ttl, MaxPresignTTL)
	}
	if err := ctx.Err(); err != nil {
		return nil, canceled(ctx)
	}
	params := url.Values{}
	for name, v := range map[string]string{
		"response-content-type":        contentType,
		"response-content-disposition": contentDisposition,
		"response-cache-control":       cacheControl,
	} {
		if v != "" {
			params.Set(name, v)
		}
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, name, ttl, params)
	if err != nil {
		// Only a region lookup reaches the network here; with the region
		// in the blob URL nothing does.
		return nil, s.fail(ctx, "presign blob", key, err)
	}
	return u, nil
}

// RemoveStaleTemps deletes the temporary objects and incomplete multipart
// uploads that crashed Puts left more than StaleTempAge ago. New does it
// once; a long-running process calls it periodically so that a crash's
// leftovers do not wait for the next start. Errors are ignored: the next
// sweep retries.
func (s *Store) RemoveStaleTemps(ctx context.Context) {
	s.removeStaleTemps(ctx, time.Now().Add(-StaleTempAge))
}
