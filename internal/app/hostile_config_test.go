package app

import (
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/testkit"
)

func TestHostileInputSettings(t *testing.T) {
	cfg, err := loadConfig(testkit.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxAnswerBytes != 32<<20 || cfg.maxAttributeBytes != 1<<20 || cfg.maxInFlight != 256 || cfg.listenAddr != ":8080" {
		t.Errorf("defaults: answer %d, attribute %d, in flight %d, listen %q", cfg.maxAnswerBytes, cfg.maxAttributeBytes, cfg.maxInFlight, cfg.listenAddr)
	}
	cfg, err = loadConfig(testkit.Env(map[string]string{
		"MISP_MAX_ANSWER_BYTES": "64MiB", "MISP_MAX_ATTRIBUTE_BYTES": "524288", "MAX_IN_FLIGHT": "10",
		"PORT": "9000", "LISTEN_ADDR": "127.0.0.1:9443",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxAnswerBytes != 64<<20 || cfg.maxAttributeBytes != 512<<10 || cfg.maxInFlight != 10 || cfg.listenAddr != "127.0.0.1:9443" {
		t.Errorf("set: answer %d, attribute %d, in flight %d, listen %q", cfg.maxAnswerBytes, cfg.maxAttributeBytes, cfg.maxInFlight, cfg.listenAddr)
	}
	if cfg, _ := loadConfig(testkit.Env(map[string]string{"PORT": "9000"})); cfg.listenAddr != ":9000" {
		t.Errorf("LISTEN_ADDR defaults to :PORT, got %q", cfg.listenAddr)
	}
	for name, bad := range map[string]string{
		"MISP_MAX_ANSWER_BYTES": "lots", "MISP_MAX_ATTRIBUTE_BYTES": "-1", "MAX_IN_FLIGHT": "0", "LISTEN_ADDR": "8080",
	} {
		_, err := loadConfig(testkit.Env(map[string]string{name: bad}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: err = %v, want one naming the variable", name, bad, err)
		}
	}
	if _, err := loadConfig(testkit.Env(map[string]string{"MISP_MAX_ANSWER_BYTES": "2GiB"})); err != nil {
		t.Errorf("2GiB: %v", err)
	}
}

// TestHostSpellings: a HOST is compared with MISP_ALLOWED_HOSTS in one spelling (lower case,
// no trailing dot), and spellings that are not plain ASCII are refused rather than guessed at.
func TestHostSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"https://MISP.example.org.":      "misp.example.org",
		"misp.example.org.:8443":         "misp.example.org:8443",
		"https://[::FFFF:127.0.0.1]:443": "[::ffff:127.0.0.1]:443",
	} {
		if _, hostport, err := mispBase(in); err != nil || hostport != want {
			t.Errorf("mispBase(%q) = %q, %v; want %q", in, hostport, err, want)
		}
	}
	for _, bad := range []string{"https://ｌｏｃａｌｈｏｓｔ", "https://mísp.example", "https://[fe80::1%25eth0]", "https://."} {
		if _, _, err := mispBase(bad); err == nil {
			t.Errorf("mispBase(%q) accepted", bad)
		}
	}
}
