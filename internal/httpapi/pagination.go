package httpapi

import (
	"net/http"
	"strconv"

	"github.com/imgd/imgd"
)

// pageParams reads ?limit= and ?cursor= of a list request. An absent limit
// is 0, which the store turns into imgd.DefaultPageLimit.
func pageParams(r *http.Request) (limit int, cursor string, _ error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > imgd.MaxPageLimit {
			return 0, "", &imgd.Error{Code: imgd.CodeInvalidArgument, Field: "limit",
				Message: "must be an integer in 1.." + strconv.Itoa(imgd.MaxPageLimit) + ", got " + strconv.Quote(v)}
		}
		limit = n
	}
	return limit, q.Get("cursor"), nil
}

// page is the JSON of one page of a list.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// writePage answers with one page of a list; when there is a next page it
// also links to it (RFC 8288), keeping the request's other parameters.
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	if next != "" {
		u := *r.URL
		q := u.Query()
		q.Set("cursor", next)
		u.RawQuery = q.Encode()
		w.Header().Set("Link", "<"+u.EscapedPath()+"?"+u.RawQuery+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, page[T]{Items: items, NextCursor: next})
}
