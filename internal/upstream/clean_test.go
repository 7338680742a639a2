package upstream_test

import (
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/upstream"
)

// TestCleanFoldsSecretsAsText: a key holding white space or a control character (both can
// travel in an HTTP header) echoed by a server is found although Clean folded the text's
// white space before looking for it.
func TestCleanFoldsSecretsAsText(t *testing.T) {
	for _, key := range []string{
		"Zk3fQ9xWm2Lp7Rt5\tYv8Bn4Hc6Jd1Gs0Ae2Ui9Oq",
		"Zk3fQ9xWm2Lp7Rt5  Yv8Bn4Hc6Jd1Gs0Ae2Ui9Oq",
		"Zk3fQ9xWm2Lp7Rt5\u0085Yv8Bn4Hc6Jd1Gs0Ae2Ui9Oq",
		" Zk3fQ9xWm2Lp7Rt5Yv8Bn4Hc6Jd1Gs0Ae2Ui9Oq\n",
	} {
		got := upstream.Clean("Invalid API key "+key+" given", key)
		if strings.Contains(got, "Zk3fQ9xWm2Lp7Rt5") || !strings.HasPrefix(got, "Invalid API key ") || !strings.HasSuffix(got, " given") {
			t.Errorf("Clean(%q) = %q", key, got)
		}
	}
}
