package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"code.dny.dev/ssrf"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// maxURLLength bounds an endpoint's URL.
const maxURLLength = 2048

// Policy says which URLs may receive webhooks. Unless AllowPrivate, a URL
// whose host is, or resolves to, an address that is not public (private,
// loopback, link-local, and the rest of IANA's special-purpose registries,
// as code.dny.dev/ssrf lists them) is refused when an endpoint is created,
// and the dialer refuses to connect to such an address at send time, after
// resolving the name again: a name that resolved to a public address then
// and to a private one now (DNS rebinding) is refused all the same.
type Policy struct {
	AllowPrivate bool
	// Resolver resolves host names when an endpoint is created (nil: the
	// default resolver).
	Resolver *net.Resolver
	guard    *ssrf.Guardian
}

// NewPolicy returns the policy; allowPrivate (WEBHOOK_ALLOW_PRIVATE)
// lets private addresses in, for development.
func NewPolicy(allowPrivate bool) *Policy {
	return &Policy{AllowPrivate: allowPrivate, guard: ssrf.New(ssrf.WithAnyPort())}
}

// errPrivate is the reason a private address is refused.
var errPrivate = errors.New("not a public address")

// allowed reports whether the policy lets a connection to ip go.
func (p *Policy) allowed(ip netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	ip = ip.Unmap()
	network := "tcp6"
	if ip.Is4() {
		network = "tcp4"
	}
	if err := p.guard.Safe(network, netip.AddrPortFrom(ip, 443).String(), nil); err != nil {
		return fmt.Errorf("%s: %w", ip, errPrivate)
	}
	return nil
}

// CheckURL returns the URL an endpoint will be called at, or the field
// error that says why raw cannot be one.
func (p *Policy) CheckURL(ctx context.Context, raw string) (string, *txmodel.FieldError) {
	bad := func(code, msg string) (string, *txmodel.FieldError) {
		return "", &txmodel.FieldError{Field: "url", Code: code, Message: msg}
	}
	switch {
	case raw == "":
		return bad(txmodel.CodeRequired, "required")
	case len(raw) > maxURLLength:
		return bad(txmodel.CodeTooLong, fmt.Sprintf("at most %d characters", maxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad(txmodel.CodeInvalidValue, "not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad(txmodel.CodeInvalidValue, "must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return bad(txmodel.CodeInvalidValue, "has no host")
	case u.User != nil:
		return bad(txmodel.CodeInvalidValue, "must not carry a user name or password: sign-in data in a URL is shown wherever the URL is")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad(txmodel.CodeInvalidValue, "must not have a fragment")
	}
	if err := p.checkHost(ctx, u.Hostname()); err != nil {
		return bad(txmodel.CodeInvalidValue, err.Error())
	}
	return u.String(), nil
}

// resolveTimeout bounds the name lookup of CheckURL.
const resolveTimeout = 5 * time.Second

func (p *Policy) checkHost(ctx context.Context, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if p.allowed(ip) != nil {
			return fmt.Errorf("%s is a private, loopback, link-local or otherwise non-public address", host)
		}
		return nil
	}
	if p.AllowPrivate {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("the host %s does not resolve", host)
	}
	for _, ip := range addrs {
		if p.allowed(ip) != nil {
			return fmt.Errorf("the host %s resolves to %s, a private, loopback, link-local or otherwise non-public address", host, ip.Unmap())
		}
	}
	return nil
}

// Control is a net.Dialer's Control: it refuses to connect to an address
// the policy does not allow, after the name was resolved, just before the
// connection is made.
func (p *Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook address %q: %w", address, err)
	}
	return p.allowed(ap.Addr())
}
