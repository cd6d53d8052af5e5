package backup

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/iacc/iacc/tasks"
)

// FormatVersion is the version of the backup format this package writes.
const FormatVersion = 1

const (
	dataSuffix     = ".sql.gz.age"
	manifestSuffix = ".manifest.json"
)

// Manifest describes one backup. It is stored next to the backup file as
// <id>.manifest.json.
type Manifest struct {
	Format        int       `json:"format"`
	ID            string    `json:"id"`
	File          string    `json:"file"`
	Database      string    `json:"database"`
	ServerVersion string    `json:"server_version"`
	IACCVersion   string    `json:"iacc_version"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	DurationMS    int64     `json:"duration_ms"`
	// Bytes is the size of the stored (encrypted) file and SHA256 its
	// checksum; SQLBytes is the size of the SQL before compression.
	Bytes       int64               `json:"bytes"`
	SHA256      string              `json:"sha256"`
	SQLBytes    int64               `json:"sql_bytes"`
	Compression string              `json:"compression"` // gzip
	Encryption  string              `json:"encryption"`  // age
	Recipients  []string            `json:"recipients"`  // age public keys the file is encrypted to
	Tables      map[string]TableSum `json:"tables"`
}

// TableSum is a table's row count and checksum: the SHA-256 (hex) of its
// rows in primary-key order, each value encoded canonically.
type TableSum struct {
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

// Duration is how long the backup took.
func (m Manifest) Duration() time.Duration { return time.Duration(m.DurationMS) * time.Millisecond }

// Rows is the total row count.
func (m Manifest) Rows() int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// NewID is the id of a backup taken at t: 20261125T020000Z.
func NewID(t time.Time) string { return t.UTC().Format(tasks.BackupIDLayout) }

// ParseID returns the time of a backup id.
func ParseID(id string) (time.Time, error) {
	t, err := time.Parse(tasks.BackupIDLayout, id)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid backup id %q (expected the form 20261125T020000Z)", id)
	}
	return t, nil
}

// DataName is the name of a backup's file in the store.
func DataName(id string) string { return id + dataSuffix }

// ManifestName is the name of a backup's manifest in the store.
func ManifestName(id string) string { return id + manifestSuffix }

// splitName tells what a store object is: a backup file or a manifest of a
// valid id. Anything else is not ours.
func splitName(name string) (id string, manifest, ok bool) {
	switch {
	case strings.HasSuffix(name, manifestSuffix):
		id, manifest = strings.TrimSuffix(name, manifestSuffix), true
	case strings.HasSuffix(name, dataSuffix):
		id = strings.TrimSuffix(name, dataSuffix)
	default:
		return "", false, false
	}
	if _, err := ParseID(id); err != nil {
		return "", false, false
	}
	return id, manifest, true
}

func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("decode manifest: %w", err)
	}
	if m.Format != FormatVersion {
		return Manifest{}, fmt.Errorf("manifest %s has format %d; this iacc reads format %d", m.ID, m.Format, FormatVersion)
	}
	if _, err := ParseID(m.ID); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	return m, nil
}
