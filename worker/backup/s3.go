package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3PartSize is the size of one part of a multipart upload. The upload of a
// stream of unknown length holds one part in memory, and a multipart upload
// has at most 10 000 parts: 16 MiB parts allow backups of up to 160 GB.
const S3PartSize = 16 << 20

// S3Config locates a bucket of an S3-compatible service.
type S3Config struct {
	// Endpoint is host[:port] or a URL (https://host[:port]; http:// means
	// Insecure). Empty: AWS S3 (s3.amazonaws.com).
	Endpoint string
	Bucket   string
	// Prefix is prepended to every object name ("iacc/backups/").
	Prefix string
	// AccessKey and SecretKey are static credentials. When both are empty
	// the usual AWS/MinIO environment variables and the instance's IAM
	// role are tried.
	AccessKey string
	SecretKey string
	Region    string // default us-east-1
	Insecure  bool   // plain HTTP (test servers, a MinIO on localhost)
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// S3Store is a Store in an S3-compatible bucket.
type S3Store struct {
	client *minio.Client
	bucket string
	prefix string
	desc   string
}

// NewS3Store returns a Store in the configured bucket. It does not contact
// the service.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("S3 bucket is not set")
	}
	host, secure, err := parseEndpoint(cfg.Endpoint, cfg.Insecure)
	if err != nil {
		return nil, err
	}
	var creds *credentials.Credentials
	switch {
	case cfg.AccessKey != "" && cfg.SecretKey != "":
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	case cfg.AccessKey != "" || cfg.SecretKey != "":
		return nil, errors.New("S3 access key and secret key must be set together")
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.IAM{},
		})
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := &minio.Options{Creds: creds, Secure: secure, Region: region, Transport: cfg.Transport}
	if !strings.HasSuffix(host, "amazonaws.com") {
		// S3-compatible services (MinIO, Ceph, R2, test servers) are
		// addressed by path; AWS picks virtual hosts itself.
		opts.BucketLookup = minio.BucketLookupPath
	}
	c, err := minio.New(host, opts)
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", host, err)
	}
	prefix := strings.TrimLeft(cfg.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	return &S3Store{client: c, bucket: cfg.Bucket, prefix: prefix,
		desc: fmt.Sprintf("s3://%s/%s (%s://%s)", cfg.Bucket, prefix, scheme, host)}, nil
}

func parseEndpoint(endpoint string, insecure bool) (host string, secure bool, err error) {
	if endpoint == "" {
		return "s3.amazonaws.com", !insecure, nil
	}
	if !strings.Contains(endpoint, "://") {
		return strings.TrimSuffix(endpoint, "/"), !insecure, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("invalid S3 endpoint %q: expected host:port or https://host:port", endpoint)
	}
	switch u.Scheme {
	case "https":
		return u.Host, !insecure, nil
	case "http":
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("invalid S3 endpoint %q: scheme must be http or https", endpoint)
}

func (s *S3Store) key(name string) string { return s.prefix + name }

// Put implements Store with a multipart upload of S3PartSize parts; a failed
// read aborts the upload, so no object appears.
func (s *S3Store) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	ct := "application/octet-stream"
	if strings.HasSuffix(name, ".json") {
		ct = "application/json"
	}
	info, err := s.client.PutObject(ctx, s.bucket, s.key(name), r, -1, minio.PutObjectOptions{
		PartSize: S3PartSize, ContentType: ct,
		// Each part carries its MD5, checked by the server. The payload is
		// not signed chunk by chunk (AWS's streaming signature, which not
		// every S3-compatible server decodes for parts): it is protected by
		// TLS, and end to end by age's authentication and the manifest's
		// SHA-256.
		SendContentMd5: true, DisableContentSha256: true,
	})
	if err != nil {
		return 0, fmt.Errorf("upload %s to %s: %w", name, s, err)
	}
	return info.Size, nil
}

// Open implements Store.
func (s *S3Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.key(name), minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat()
	}
	if err != nil {
		if obj != nil {
			_ = obj.Close()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("%s in %s: %w", name, s, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s in %s: %w", name, s, err)
	}
	return obj, nil
}

// List implements Store: the objects directly under the prefix.
func (s *S3Store) List(ctx context.Context) ([]string, error) {
	var out []string
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s, o.Err)
		}
		name := strings.TrimPrefix(o.Key, s.prefix)
		if name != "" && !strings.Contains(name, "/") {
			out = append(out, name)
		}
	}
	return out, nil
}

// Delete implements Store.
func (s *S3Store) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{}); err != nil &&
		minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("delete %s from %s: %w", name, s, err)
	}
	return nil
}

func (s *S3Store) String() string { return s.desc }

// EnsureBucket creates the bucket if it does not exist (tests, local MinIO).
func (s *S3Store) EnsureBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	if ok {
		return nil
	}
	if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		return fmt.Errorf("create bucket %s: %w", s.bucket, err)
	}
	return nil
}
