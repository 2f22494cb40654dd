package config

import (
	"strings"
	"testing"
)

func TestStagingAzblobValidation(t *testing.T) {
	base := "endpoints:\n  src:\n    url: imaps://imap.example:993\n    passwords: env:PW\n"
	for _, tc := range []struct {
		staging string
		want    string // substring of the error; "" = valid
	}{
		{"kind: azblob\n  container: mail\n  connection_string: env:AZ", ""},
		{"kind: azblob\n  container: mail\n  account_url: https://acct.blob.core.windows.net\n  create_container: true", ""},
		{"kind: azblob\n  sas_url: file:/etc/mailshift/sas", ""},
		{"kind: azblob\n  container: mail", "exactly one of"},
		{"kind: azblob\n  container: mail\n  connection_string: env:AZ\n  account_url: https://a.blob.core.windows.net", "exactly one of"},
		{"kind: azblob\n  connection_string: env:AZ", "staging.container: required"},
		{"kind: azblob\n  container: Mail_Box\n  connection_string: env:AZ", "staging.container"},
		{"kind: azblob\n  container: mail\n  connection_string: DefaultEndpointsProtocol=https;AccountKey=x", "inline secrets"},
		{"kind: azblob\n  sas_url: https://a.blob.core.windows.net/mail?sig=x", "staging.sas_url"},
		{"kind: azblob\n  sas_url: env:SAS\n  create_container: true", "cannot create"},
		{"kind: azblob\n  container: mail\n  account_url: https://a.blob.core.windows.net/?sv=1&sig=x", "must not carry a query"},
		{"kind: azblob\n  container: mail\n  account_url: acct", "staging.account_url"},
		{"kind: azblob\n  container: mail\n  connection_string: env:AZ\n  block_size: 1KB", "staging.block_size"},
		{"kind: azblob\n  container: mail\n  connection_string: env:AZ\n  concurrency: -1", "staging.concurrency"},
	} {
		c, err := Parse([]byte(base+"staging:\n  "+tc.staging+"\n"), "test")
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.staging, err)
				continue
			}
			if c.Staging.BlockSize != DefaultStagingBlockSize || c.Staging.Concurrency != DefaultStagingConcurrency {
				t.Errorf("%q: defaults not applied: %+v", tc.staging, c.Staging)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.staging, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "sig=x") {
			t.Errorf("%q: the error echoes a secret: %v", tc.staging, err)
		}
	}
}
