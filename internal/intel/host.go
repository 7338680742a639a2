package intel

import (
	"fmt"
	"net/url"
	"strings"
)

// MISPBase is the one place a MISP address is normalised: it returns raw as
// scheme://host[:port][/path] (https when no scheme is given, as in a module's "MISP Host"
// field) with its host[:port], the form MISP_ALLOWED_HOSTS is compared with and source names
// say: lower case, without a trailing dot. Host names must be ASCII (an internationalised
// name in its xn-- form): other spellings of a name (fullwidth letters, say) are refused
// rather than guessed at, and so is an IPv6 zone. Two spellings of one MISP give one base.
func MISPBase(raw string) (base, hostport string, err error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("HOST %q is not a MISP base URL (https://misp.example)", raw)
	}
	name := strings.ToLower(u.Hostname())
	trimmed := strings.TrimSuffix(name, ".")
	if trimmed == "" || !printableASCII(name) || strings.ContainsRune(name, '%') {
		return "", "", fmt.Errorf("HOST %q is not a MISP base URL: write the host name in ASCII (xn-- for an internationalised name)", raw)
	}
	hostport = strings.ToLower(u.Host)
	if trimmed != name {
		hostport = strings.Replace(hostport, name, trimmed, 1)
	}
	return u.Scheme + "://" + hostport + strings.TrimRight(u.EscapedPath(), "/"), hostport, nil
}

func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
