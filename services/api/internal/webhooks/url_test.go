package webhooks

import (
	"context"
	"net"
	"strings"
	"testing"
)

// noDNS is a resolver that knows only /etc/hosts ("localhost"): the
// test does not depend on the machine's DNS.
func noDNS() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no DNS in this test"}
	}}
}

func TestCheckURL(t *testing.T) {
	strict, open := NewPolicy(false), NewPolicy(true)
	strict.Resolver = noDNS()
	for _, tt := range []struct {
		url   string
		allow bool   // with WEBHOOK_ALLOW_PRIVATE
		want  string // part of the field error; empty: accepted
	}{
		{"https://93.184.215.14/hook", false, ""},
		{"http://93.184.215.14:8080/hook?x=1", false, ""},
		{"https://[2606:4700::6810:85e5]/hook", false, ""},
		{"", false, "required"},
		{"ftp://93.184.215.14/hook", false, "http or https"},
		{"javascript:alert(1)", false, "http or https"},
		{"https:///hook", false, "no host"},
		{"https://user:pw@93.184.215.14/hook", false, "user name or password"},
		{"https://93.184.215.14/hook#x", false, "fragment"},
		{"http://127.0.0.1/hook", false, "non-public"},
		{"http://127.0.0.1:9000/hook", true, ""},
		{"http://10.1.2.3/hook", false, "non-public"},
		{"http://172.16.0.1/hook", false, "non-public"},
		{"http://192.168.1.1/hook", false, "non-public"},
		{"http://169.254.169.254/latest/meta-data", false, "non-public"},
		{"http://100.64.0.1/hook", false, "non-public"},
		{"http://0.0.0.0/hook", false, "non-public"},
		{"http://[::1]/hook", false, "non-public"},
		{"http://[fe80::1]/hook", false, "non-public"},
		{"http://[fd00::1]/hook", false, "non-public"},
		{"http://[::ffff:127.0.0.1]/hook", false, "non-public"},
		{"http://localhost/hook", false, "resolves to 127.0.0.1"},
		{"http://localhost/hook", true, ""},
		{"https://no-such-host.invalid/hook", false, "does not resolve"},
		{"https://" + strings.Repeat("a", 2050) + ".com/", false, "at most"},
	} {
		p := strict
		if tt.allow {
			p = open
		}
		got, fe := p.CheckURL(context.Background(), tt.url)
		switch {
		case tt.want == "" && fe != nil:
			t.Errorf("CheckURL(%q) refused: %s", tt.url, fe.Message)
		case tt.want == "" && got != tt.url:
			t.Errorf("CheckURL(%q) = %q, want it unchanged", tt.url, got)
		case tt.want != "" && fe == nil:
			t.Errorf("CheckURL(%q) accepted, want refused with %q", tt.url, tt.want)
		case tt.want != "" && (!strings.Contains(fe.Message, tt.want) || fe.Field != "url"):
			t.Errorf("CheckURL(%q) = %s: %q, want url: …%s…", tt.url, fe.Field, fe.Message, tt.want)
		}
	}
}

func TestControlRefusesPrivateAddressesAtDialTime(t *testing.T) {
	strict, open := NewPolicy(false), NewPolicy(true)
	for _, addr := range []string{"127.0.0.1:80", "10.0.0.1:443", "[::1]:8080", "169.254.169.254:80", "[::ffff:10.0.0.1]:80"} {
		if err := strict.Control("tcp", addr, nil); err == nil {
			t.Errorf("Control(%s) let it through", addr)
		}
		if err := open.Control("tcp", addr, nil); err != nil {
			t.Errorf("Control(%s) with private addresses allowed: %v", addr, err)
		}
	}
	if err := strict.Control("tcp4", "93.184.215.14:8443", nil); err != nil {
		t.Errorf("Control of a public address on any port: %v", err)
	}
}
