package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// presigner is a blob store that can hand out time-limited download URLs
// (internal/blob/s3blob). The downloads it signs bypass this server, which
// then never carries their bytes.
type presigner interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration, contentType, contentDisposition, cacheControl string) (*url.URL, error)
}

// svgType is the one media type a download keeps from redirects: an
// uploaded SVG is a document that may hold scripts, and only this server
// adds the sandboxing Content-Security-Policy to it.
const svgType = "image/svg+xml"

// blobCacheControl lets clients keep a blob's content for good: a key's
// content never changes.
const blobCacheControl = "private, max-age=31536000, immutable"

// compatResultPattern is the original service's result route, whose
// clients get the bytes as they always did, not a redirect.
const compatResultPattern = "GET /api/v1/images/{result}/{task_id}"

// redirectToBlob answers 302 Found to a presigned URL of key when the
// server presigns and the request is not the web page's own: the page's
// Content-Security-Policy allows images and fetches from this origin only,
// and a browser marks the page's requests Sec-Fetch-Site: same-origin. It
// reports whether it answered. The redirect itself is not cacheable: its
// URL expires, unlike the content it leads to.
func (s *Server) redirectToBlob(w http.ResponseWriter, r *http.Request, key, mediaType, disposition string) (bool, error) {
	p, ok := s.blobs.(presigner)
	if !ok || s.presignTTL <= 0 || mediaType == svgType || r.Header.Get("Sec-Fetch-Site") == "same-origin" ||
		r.Pattern == compatResultPattern {
		return false, nil
	}
	u, err := p.PresignGet(r.Context(), key, s.presignTTL, mediaType, disposition, blobCacheControl)
	if err != nil {
		return false, err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
	return true, nil
}
