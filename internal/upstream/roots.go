package upstream

import (
	"crypto/x509"
	"fmt"
	"os"
)

// ExtraRoots is the system's CA pool with the PEM certificates of file added: the roots an
// outbound TLS connection trusts when its operator names an internal CA (MISP_CA_FILE,
// REDIS_CA_FILE). Without system roots (a scratch container), the file's CAs alone are
// trusted. The caller names the setting in its error.
func ExtraRoots(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(file) //nolint:gosec // a path the operator configured
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the CA file %q holds no PEM certificate", file)
	}
	return pool, nil
}
