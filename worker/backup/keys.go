package backup

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// ParseRecipients parses age recipients (age1…), separated by commas,
// spaces or newlines. It returns them with their text, which goes into the
// manifest (public keys are not secret).
func ParseRecipients(s string) ([]age.Recipient, []string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, nil, errors.New("no age recipient given (expected age1…)")
	}
	var out []age.Recipient
	for _, f := range fields {
		rs, err := age.ParseRecipients(strings.NewReader(f))
		if err != nil || len(rs) != 1 {
			return nil, nil, fmt.Errorf("invalid age recipient %q: expected a public key such as age1… (from age-keygen)", abbreviate(f))
		}
		out = append(out, rs[0])
	}
	return out, fields, nil
}

// ParseIdentities parses age identities (AGE-SECRET-KEY-1…), one a line;
// lines starting with # are comments, as in the files age-keygen writes.
// Errors never repeat the key material.
func ParseIdentities(s string) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(strings.NewReader(s))
	if err != nil {
		return nil, errors.New("invalid age identity: expected AGE-SECRET-KEY-1… lines (from age-keygen)")
	}
	return ids, nil
}

// ReadIdentityFile reads age identities from a file such as age-keygen writes.
func ReadIdentityFile(path string) ([]age.Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read age identity file: %w", err)
	}
	ids, err := ParseIdentities(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

// abbreviate shows the start of something that failed to parse without
// echoing all of it (it might be a secret pasted into the wrong variable).
func abbreviate(s string) string {
	if strings.HasPrefix(strings.ToUpper(s), "AGE-SECRET-KEY-") {
		return "AGE-SECRET-KEY-… (a secret key, not a public key)"
	}
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
