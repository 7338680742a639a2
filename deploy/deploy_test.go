package deploy_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v4"

	"github.com/misp-relay/misp-relay/internal/auth"
)

// moduleType is the part of module_type.json the checks read.
type moduleType struct {
	Title             string `json:"title"`
	DefaultName       string `json:"default_name"`
	ShortDescription  string `json:"short_description"`
	Description       string `json:"description"`
	Tips              string `json:"tips"`
	ConfigurationSpec []struct {
		Key      string `json:"key"`
		Required bool   `json:"required"`
		Type     string `json:"type"`
		Label    string `json:"label"`
	} `json:"configuration_spec"`
	Capabilities []struct {
		ID          string `json:"id"`
		Description string `json:"description"`
	} `json:"capabilities"`
	Properties map[string]json.RawMessage `json:"properties"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func property(t *testing.T, m moduleType, name string, v any) {
	t.Helper()
	raw, ok := m.Properties[name]
	if !ok {
		t.Fatalf("module_type.json: properties.%s is missing", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("module_type.json: properties.%s: %v", name, err)
	}
}

func TestModuleType(t *testing.T) {
	var m moduleType
	readJSON(t, "module_type.json", &m)
	for name, v := range map[string]string{
		"title": m.Title, "default_name": m.DefaultName, "short_description": m.ShortDescription,
		"description": m.Description, "tips": m.Tips,
	} {
		if strings.TrimSpace(v) == "" {
			t.Errorf("module_type.json: %s is empty", name)
		}
	}

	// Each custom_<NAME> becomes claim <NAME> of the configuration token: these are the ones
	// internal/auth reads.
	type spec struct {
		Required bool
		Type     string
	}
	got := map[string]spec{}
	for _, s := range m.ConfigurationSpec {
		if s.Label == "" {
			t.Errorf("configuration_spec %s has no label", s.Key)
		}
		got[s.Key] = spec{s.Required, s.Type}
	}
	want := map[string]spec{
		"custom_AuthKey":            {true, "api_key"},
		"custom_HOST":               {true, "string"},
		"custom_CTR_ENTITIES_LIMIT": {false, "integer"},
		"custom_URLSCAN_KEY":        {false, "api_key"},
	}
	// HOST_2/AuthKey_2 … HOST_5/AuthKey_5: the other MISPs a token may name (auth.MaxMISPs).
	for n := 2; n <= auth.MaxMISPs; n++ {
		want["custom_HOST_"+strconv.Itoa(n)] = spec{false, "string"}
		want["custom_AuthKey_"+strconv.Itoa(n)] = spec{false, "api_key"}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configuration_spec (-want +got):\n%s", diff)
	}

	for name, want := range map[string]string{
		"auth-type":               "configuration-token",
		"configuration-token-alg": "RS256",
	} {
		var got string
		property(t, m, name, &got)
		if got != want {
			t.Errorf("properties.%s = %q, want %q", name, got, want)
		}
	}
	var jwksHost string
	property(t, m, "custom_jwks_host", &jwksHost)
	if !slices.Contains(auth.DefaultJWKSHosts(), jwksHost) {
		t.Errorf("custom_jwks_host %q is not trusted by default (%v)", jwksHost, auth.DefaultJWKSHosts())
	}
	for _, name := range []string{"url", "configuration-token-audience"} {
		var u string
		property(t, m, name, &u)
		if !strings.HasPrefix(u, "https://") || strings.HasSuffix(u, "/") {
			t.Errorf("properties.%s = %q: XDR calls https URLs, and the audience is compared without a trailing slash", name, u)
		}
	}

	// Every supported API is a POST operation of the relay's spec, and each has its capability.
	var apis []string
	property(t, m, "supported-apis", &apis)
	wantAPIs := []string{"health", "deliberate/observables", "observe/observables", "refer/observables", "respond/observables", "respond/trigger", "tiles", "tiles/tile", "tiles/tile-data"}
	if diff := cmp.Diff(wantAPIs, apis); diff != "" {
		t.Errorf("supported-apis (-want +got):\n%s", diff)
	}
	spec3, err := openapi3.NewLoader().LoadFromFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	capabilities := map[string]bool{}
	for _, c := range m.Capabilities {
		capabilities[c.ID] = true
		if c.Description == "" {
			t.Errorf("capability %s has no description", c.ID)
		}
	}
	for _, api := range apis {
		item := spec3.Paths.Find("/" + api)
		if item == nil || item.Post == nil {
			t.Errorf("supported API %q is not a POST path of api/openapi.yaml", api)
		}
		capability, _, _ := strings.Cut(api, "/")
		if !capabilities[capability] {
			t.Errorf("supported API %q has no capability %q", api, capability)
		}
	}
}

func TestModuleSettings(t *testing.T) {
	var s struct {
		Name   string            `json:"name"`
		JWT    map[string]string `json:"jwt"`
		Region map[string]string `json:"region"`
	}
	readJSON(t, "module_settings.json", &s)
	if strings.TrimSpace(s.Name) == "" {
		t.Error("module_settings.json: name is empty")
	}
	// The claims of the HS256 token internal/auth reads (and `relay jwt` signs).
	tok, err := auth.Sign("secret", auth.Claims{Key: "k", URLScanKey: "u", OtherMISPs: []auth.MISP{{Host: "misp2.example", Key: "k2"}}})
	if err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{}
	parts := strings.Split(tok, ".")
	raw, err := base64URL(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	var claims []string
	for k := range payload {
		claims = append(claims, k)
	}
	slices.Sort(claims)
	var prompts []string
	for k, v := range s.JWT {
		prompts = append(prompts, k)
		if v == "" {
			t.Errorf("jwt.%s has no prompt", k)
		}
	}
	slices.Sort(prompts)
	if diff := cmp.Diff(claims, prompts); diff != "" {
		t.Errorf("jwt claims (-signed +module_settings):\n%s", diff)
	}
	for _, region := range []string{"us", "eu", "apjc"} {
		if s.Region[region] == "" {
			t.Errorf("region.%s is missing", region)
		}
	}
}

// node returns the value of key in mapping n, or nil.
func node(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil {
			return nil
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			n = n.Content[0]
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

func TestSAMTemplate(t *testing.T) {
	raw, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	scalar := func(path ...string) string {
		n := node(&doc, path...)
		if n == nil || n.Kind != yaml.ScalarNode {
			t.Errorf("template.yaml: %s is missing or not a scalar", strings.Join(path, "."))
			return ""
		}
		return n.Value
	}
	fn := []string{"Resources", "RelayFunction"}
	props := append(fn, "Properties")
	for path, want := range map[string]string{
		"Transform":                             "AWS::Serverless-2016-10-31",
		"Resources.RelayFunction.Type":          "AWS::Serverless::Function",
		"Properties.Runtime":                    "provided.al2023",
		"Properties.Handler":                    "bootstrap",
		"Properties.MemorySize":                 "256",
		"Properties.Timeout":                    "30",
		"Properties.CodeUri":                    "../dist/misp-relay-lambda-arm64.zip", // what make lambda writes
		"Properties.FunctionUrlConfig.AuthType": "NONE",
		"Parameters.SecretKey.NoEcho":           "true",
		"Parameters.SecretKey.Default":          "",
	} {
		keys := strings.Split(path, ".")
		if keys[0] == "Properties" {
			keys = append(slices.Clone(props), keys[1:]...)
		}
		if got := scalar(keys...); got != want {
			t.Errorf("template.yaml: %s = %q, want %q", path, got, want)
		}
	}
	if arch := node(&doc, append(props, "Architectures")...); arch == nil || len(arch.Content) != 1 || arch.Content[0].Value != "arm64" {
		t.Error("template.yaml: Architectures must be [arm64] (the zip CodeUri names)")
	}

	// Settings come from parameters: SECRET_KEY above all is never written in the template.
	vars := node(&doc, append(props, "Environment", "Variables")...)
	if vars == nil {
		t.Fatal("template.yaml: no environment variables")
	}
	params := node(&doc, "Parameters")
	got := map[string]bool{}
	for i := 0; i+1 < len(vars.Content); i += 2 {
		name, value := vars.Content[i].Value, vars.Content[i+1]
		got[name] = true
		if value.Tag == "!Ref" && node(params, value.Value) == nil {
			t.Errorf("%s refers to an undefined parameter %s", name, value.Value)
		}
	}
	for _, name := range []string{"SECRET_KEY", "API_URL", "JWKS_HOSTS", "RELAY_AUDIENCE", "CTR_ENTITIES_LIMIT", "CACHE_TTL", "LOG_LEVEL"} {
		if !got[name] {
			t.Errorf("template.yaml: environment variable %s is missing", name)
		}
	}
	if v := node(vars, "SECRET_KEY"); v == nil || v.Tag != "!Ref" || v.Value != "SecretKey" {
		t.Error("template.yaml: SECRET_KEY must be !Ref SecretKey (a NoEcho parameter)")
	}
	if got, want := scalar("Parameters", "JWKSHosts", "Default"), strings.Join(auth.DefaultJWKSHosts(), ","); got != want {
		t.Errorf("JWKSHosts default = %q, want the relay's default %q", got, want)
	}
	// The shared cache and the VPC a function needs to reach it are optional, and off by
	// default: an empty RedisURL (REDIS_URL unset) and no subnets (no VpcConfig at all).
	for path, want := range map[string]string{
		"Parameters.RedisURL.Default":                    "",
		"Parameters.RedisURL.NoEcho":                     "true", // it may hold the cache's password
		"Parameters.RedisCluster.Default":                "false",
		"Parameters.SubnetIds.Type":                      "CommaDelimitedList",
		"Parameters.SubnetIds.Default":                   "",
		"Parameters.SecurityGroupIds.Type":               "CommaDelimitedList",
		"Parameters.SecurityGroupIds.Default":            "",
		"Properties.Environment.Variables.REDIS_URL":     "RedisURL",
		"Properties.Environment.Variables.REDIS_CLUSTER": "RedisCluster",
	} {
		keys := strings.Split(path, ".")
		if keys[0] == "Properties" {
			keys = append(slices.Clone(props), keys[1:]...)
		}
		if got := scalar(keys...); got != want {
			t.Errorf("template.yaml: %s = %q, want %q", path, got, want)
		}
	}
	if allowed := node(params, "RedisCluster", "AllowedValues"); allowed == nil || len(allowed.Content) != 2 {
		t.Error("template.yaml: RedisCluster must allow exactly false and true (REDIS_CLUSTER)")
	} else {
		for _, v := range allowed.Content {
			if _, err := strconv.ParseBool(v.Value); err != nil {
				t.Errorf("RedisCluster allows %q, which REDIS_CLUSTER refuses", v.Value)
			}
		}
	}
	inVPC := node(&doc, "Conditions", "InVpc")
	if inVPC == nil || !strings.Contains(nodeText(inVPC), "SubnetIds") {
		t.Error("template.yaml: Conditions.InVpc must test SubnetIds")
	}
	vpc := node(&doc, append(props, "VpcConfig")...)
	switch {
	case vpc == nil || vpc.Tag != "!If" || len(vpc.Content) != 3:
		t.Error("template.yaml: VpcConfig must be !If [InVpc, {...}, !Ref AWS::NoValue]")
	case vpc.Content[0].Value != "InVpc" || vpc.Content[2].Tag != "!Ref" || vpc.Content[2].Value != "AWS::NoValue":
		t.Errorf("template.yaml: VpcConfig must be off (AWS::NoValue) unless InVpc")
	default:
		for key, param := range map[string]string{"SubnetIds": "SubnetIds", "SecurityGroupIds": "SecurityGroupIds"} {
			if v := node(vpc.Content[1], key); v == nil || v.Tag != "!Ref" || v.Value != param {
				t.Errorf("template.yaml: VpcConfig.%s must be !Ref %s", key, param)
			}
		}
	}
	if out := node(&doc, "Outputs", "RelayURL", "Value"); out == nil || out.Tag != "!GetAtt" || out.Value != "RelayFunctionUrl.FunctionUrl" {
		t.Error("template.yaml: Outputs.RelayURL must be the Function URL (!GetAtt RelayFunctionUrl.FunctionUrl)")
	}
}

// nodeText is n's scalars, depth first, joined by spaces.
func nodeText(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	parts := []string{n.Value}
	for _, c := range n.Content {
		parts = append(parts, nodeText(c))
	}
	return strings.Join(parts, " ")
}

func base64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}
