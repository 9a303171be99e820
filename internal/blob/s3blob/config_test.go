package s3blob

import (
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/imgd/imgd"
)

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

var creds = env(map[string]string{EnvAccessKeyID: "AKIDEXAMPLE", EnvSecretAccessKey: "topsecret/value"})

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		want Config
	}{
		{"bucket only: AWS over https, auto style", "s3://imgd",
			Config{Bucket: "imgd", Endpoint: "s3.amazonaws.com", Secure: true, Lookup: minio.BucketLookupAuto}},
		{"all parameters", "s3://imgd-blobs?endpoint=http://127.0.0.1:7070&region=us-east-1&path_style=true",
			Config{Bucket: "imgd-blobs", Endpoint: "127.0.0.1:7070", Region: "us-east-1", Lookup: minio.BucketLookupPath}},
		{"prefix, virtual-host style, https endpoint", "s3://b.example/imgd/prod/?endpoint=https://s3.example.com&path_style=false",
			Config{Bucket: "b.example", Prefix: "imgd/prod/", Endpoint: "s3.example.com", Secure: true, Lookup: minio.BucketLookupDNS}},
		{"endpoint with trailing slash, path_style=1", "s3://imgd/p?endpoint=http://minio:9000/&path_style=1",
			Config{Bucket: "imgd", Prefix: "p/", Endpoint: "minio:9000", Lookup: minio.BucketLookupPath}},
		{"IPv6 endpoint", "s3://imgd?endpoint=http://[::1]:7070",
			Config{Bucket: "imgd", Endpoint: "[::1]:7070", Lookup: minio.BucketLookupAuto}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseURL(tt.url, creds)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.url, err)
			}
			tt.want.AccessKeyID, tt.want.SecretAccessKey = "AKIDEXAMPLE", "topsecret/value"
			if got != tt.want {
				t.Errorf("ParseURL(%q) =\n%+v, want\n%+v", tt.url, got, tt.want)
			}
		})
	}
}

func TestParseURLSessionToken(t *testing.T) {
	t.Parallel()
	c, err := ParseURL("s3://imgd", env(map[string]string{EnvAccessKeyID: "a", EnvSecretAccessKey: "s", EnvSessionToken: "tok"}))
	if err != nil || c.SessionToken != "tok" {
		t.Errorf("ParseURL with %s set = %+v, %v; want SessionToken tok", EnvSessionToken, c, err)
	}
}

func TestParseURLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		url    string
		getenv func(string) string
		want   []string // substrings of the message
	}{
		{"other scheme", "https://imgd", creds, []string{`scheme must be s3://, got "https://"`}},
		{"no bucket", "s3:///prefix", creds, []string{"bucket name is missing"}},
		{"opaque", "s3:imgd", creds, []string{"two slashes"}},
		{"invalid bucket", "s3://Imgd_Blobs", creds, []string{`bucket "Imgd_Blobs"`}},
		{"port on bucket", "s3://imgd:9000", creds, []string{"a port belongs in endpoint="}},
		{"credentials in URL", "s3://AKID:hunter2@imgd", creds, []string{"credentials do not belong in the URL"}},
		{"dot-dot prefix", "s3://imgd/a/../b", creds, []string{`prefix "a/../b"`}},
		{"empty prefix segment", "s3://imgd/a//b", creds, []string{`prefix "a//b"`}},
		{"unknown parameter", "s3://imgd?endpoint=http://h:1&pathstyle=true", creds, []string{`unknown parameter "pathstyle"`}},
		{"repeated parameter", "s3://imgd?region=a&region=b", creds, []string{`"region" given 2 times`}},
		{"endpoint without scheme", "s3://imgd?endpoint=127.0.0.1:7070", creds, []string{"must start with http:// or https://"}},
		{"endpoint ftp", "s3://imgd?endpoint=ftp://h", creds, []string{"must start with http:// or https://"}},
		{"endpoint without host", "s3://imgd?endpoint=http://", creds, []string{"has no host"}},
		{"endpoint with path", "s3://imgd?endpoint=http://h:1/s3", creds, []string{"without path or query"}},
		{"endpoint with credentials", "s3://imgd?endpoint=http://a:b@h:1", creds, []string{"endpoint must not contain credentials"}},
		{"bad region", "s3://imgd?region=US%20East", creds, []string{`region "US East"`}},
		{"bad path_style", "s3://imgd?path_style=yes", creds, []string{`path_style "yes" must be true or false`}},
		{"no credentials", "s3://imgd", env(nil), []string{"AWS_ACCESS_KEY_ID is not set", "AWS_SECRET_ACCESS_KEY is not set"}},
		{"no secret", "s3://imgd", env(map[string]string{EnvAccessKeyID: "a"}), []string{"AWS_SECRET_ACCESS_KEY is not set"}},
		{"every problem reported", "http://imgd?path_style=maybe&x=1", env(nil),
			[]string{"scheme", "path_style", `"x"`, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}},
		{"unparsable", "s3://imgd/%zz", creds, []string{"not a valid URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseURL(tt.url, tt.getenv)
			if got := imgd.CodeOf(err); got != imgd.CodeInvalidArgument {
				t.Fatalf("ParseURL(%q) = %+v, %v (code %q); want invalid_argument", tt.url, c, err, got)
			}
			msg := imgd.MessageOf(err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("ParseURL(%q) message %q does not contain %q", tt.url, msg, w)
				}
			}
			for _, secret := range []string{"topsecret", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("ParseURL(%q) error shows a secret: %q", tt.url, err)
				}
			}
		})
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	t.Parallel()
	c, err := ParseURL("s3://imgd/p?endpoint=http://127.0.0.1:1&region=r&path_style=true",
		env(map[string]string{EnvAccessKeyID: "AKIDEXAMPLE", EnvSecretAccessKey: "topsecret", EnvSessionToken: "tokensecret"}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.String()
	want := `s3://imgd/p/ (endpoint http://127.0.0.1:1, region "r", path style, access key AKIDEXAMPLE)`
	if got != want {
		t.Errorf("Config.String() = %q, want %q", got, want)
	}
}
