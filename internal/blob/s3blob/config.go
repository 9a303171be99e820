package s3blob

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/imgd/imgd"
)

// Config is where and how to reach the bucket: a parsed blob URL plus the
// credentials. Its String method never shows the secret.
type Config struct {
	Bucket   string
	Prefix   string // "" or segments ending in "/", e.g. "imgd/prod/"
	Endpoint string // host[:port], no scheme
	Secure   bool   // https
	Region   string // "" lets the client ask the server
	// Lookup is path style (endpoint/bucket/key), virtual-host style
	// (bucket.endpoint/key), or auto (virtual-host on AWS, path elsewhere).
	Lookup minio.BucketLookupType

	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Credential environment variables, as the AWS tools name them.
const (
	EnvAccessKeyID     = "AWS_ACCESS_KEY_ID"
	EnvSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken    = "AWS_SESSION_TOKEN"
)

// defaultEndpoint is AWS S3; minio-go routes to the bucket's region.
const defaultEndpoint = "s3.amazonaws.com"

var (
	prefixSegment = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	regionSyntax  = regexp.MustCompile(`^[a-z0-9-]+$`)
)

// ParseURL parses a blob URL,
//
//	s3://BUCKET[/PREFIX]?endpoint=http://host:port&region=REGION&path_style=true
//
// and reads the credentials through getenv (os.Getenv in Open; a map in
// tests, which keeps them parallel). Every query parameter is optional:
// endpoint defaults to AWS S3 over https, region to what the server reports,
// path_style to auto. Unknown parameters are refused, so a typo does not
// silently fall back to a default. Credentials never go in the URL: URLs end
// up in logs and process listings.
//
// Errors are invalid_argument, naming every problem found; they never
// contain the secret key.
func ParseURL(rawURL string, getenv func(string) string) (Config, error) {
	var c Config
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	u, err := url.Parse(rawURL)
	if err != nil {
		// Not err itself: *url.Error quotes the whole URL, secrets included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return c, imgd.Errorf(imgd.CodeInvalidArgument, "blob URL is not a valid URL: %v", err)
	}
	shown := u.Redacted()
	if u.Scheme != "s3" {
		bad("scheme must be s3://, got %q", u.Scheme+"://")
	}
	if u.User != nil {
		bad("credentials do not belong in the URL; set %s and %s", EnvAccessKeyID, EnvSecretAccessKey)
	}
	if u.Opaque != "" {
		bad("write s3://BUCKET, with two slashes")
	}
	if u.Fragment != "" {
		bad("unexpected fragment #%s", u.Fragment)
	}
	c.Bucket = u.Host
	switch {
	case c.Bucket == "":
		bad("bucket name is missing (s3://BUCKET/...)")
	case u.Port() != "":
		bad("bucket %q: a port belongs in endpoint=", c.Bucket)
	default:
		if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
			bad("bucket %q: %v", c.Bucket, err)
		}
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		for seg := range strings.SplitSeq(p, "/") {
			if !prefixSegment.MatchString(seg) || seg == "." || seg == ".." {
				bad("prefix %q: segments must be non-empty, of letters, digits, '.', '_', '-', and not . or ..", p)
				break
			}
		}
		c.Prefix = p + "/"
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		bad("query: %v", err)
	}
	known := map[string]bool{"endpoint": true, "region": true, "path_style": true}
	for name, vals := range q {
		if !known[name] {
			bad("unknown parameter %q (known: endpoint, region, path_style)", name)
		} else if len(vals) > 1 {
			bad("parameter %q given %d times", name, len(vals))
		}
	}

	c.Endpoint, c.Secure = defaultEndpoint, true
	if q.Has("endpoint") {
		ep, err := url.Parse(q.Get("endpoint"))
		switch {
		case err != nil || (ep.Scheme != "http" && ep.Scheme != "https"):
			bad("endpoint %q must start with http:// or https://", q.Get("endpoint"))
		case ep.Host == "" || ep.Hostname() == "":
			bad("endpoint %q has no host", q.Get("endpoint"))
		case ep.User != nil:
			bad("endpoint must not contain credentials; set %s and %s", EnvAccessKeyID, EnvSecretAccessKey)
		case (ep.Path != "" && ep.Path != "/") || ep.RawQuery != "" || ep.Fragment != "":
			bad("endpoint %q must be scheme://host[:port] only, without path or query", q.Get("endpoint"))
		default:
			c.Endpoint, c.Secure = ep.Host, ep.Scheme == "https"
		}
	}
	if q.Has("region") {
		c.Region = q.Get("region")
		if !regionSyntax.MatchString(c.Region) {
			bad("region %q must be lowercase letters, digits and '-'", c.Region)
		}
	}
	c.Lookup = minio.BucketLookupAuto
	if q.Has("path_style") {
		switch ps, err := strconv.ParseBool(q.Get("path_style")); {
		case err != nil:
			bad("path_style %q must be true or false", q.Get("path_style"))
		case ps:
			c.Lookup = minio.BucketLookupPath
		default:
			c.Lookup = minio.BucketLookupDNS
		}
	}

	c.AccessKeyID = getenv(EnvAccessKeyID)
	c.SecretAccessKey = getenv(EnvSecretAccessKey)
	c.SessionToken = getenv(EnvSessionToken)
	if c.AccessKeyID == "" {
		bad("%s is not set", EnvAccessKeyID)
	}
	if c.SecretAccessKey == "" {
		bad("%s is not set", EnvSecretAccessKey)
	}

	if len(problems) > 0 {
		return Config{}, imgd.Errorf(imgd.CodeInvalidArgument, "blob URL %s: %s", shown, strings.Join(problems, "; "))
	}
	return c, nil
}

// String describes c for logs, without the secret key or session token.
func (c Config) String() string {
	scheme := "http"
	if c.Secure {
		scheme = "https"
	}
	style := map[minio.BucketLookupType]string{
		minio.BucketLookupAuto: "auto", minio.BucketLookupPath: "path", minio.BucketLookupDNS: "virtual-host",
	}[c.Lookup]
	return fmt.Sprintf("s3://%s/%s (endpoint %s://%s, region %q, %s style, access key %s)",
		c.Bucket, c.Prefix, scheme, c.Endpoint, c.Region, style, c.AccessKeyID)
}

// endpointURL is the endpoint as written in the blob URL, for messages.
func (c Config) endpointURL() string {
	if c.Secure {
		return "https://" + c.Endpoint
	}
	return "http://" + c.Endpoint
}
