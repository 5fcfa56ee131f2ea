package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// rabbitDefinitions is the part of a RabbitMQ definitions file checked here.
type rabbitDefinitions struct {
	Users       []rabbitUser       `json:"users"`
	Permissions []rabbitPermission `json:"permissions"`
}

type rabbitUser struct {
	Name             string   `json:"name"`
	PasswordHash     string   `json:"password_hash"`
	HashingAlgorithm string   `json:"hashing_algorithm"`
	Tags             []string `json:"tags"`
}

type rabbitPermission struct {
	User, Vhost, Configure, Write, Read string
}

// rabbitPasswordMatches reports whether hash is RabbitMQ's
// rabbit_password_hashing_sha256 of password: base64(salt[4] ++
// sha256(salt ++ password)).
func rabbitPasswordMatches(hash, password string) bool {
	b, err := base64.StdEncoding.DecodeString(hash)
	if err != nil || len(b) != 4+sha256.Size {
		return false
	}
	sum := sha256.Sum256(append(slices.Clip(b[:4]), password...))
	return bytes.Equal(b[4:], sum[:])
}

func TestRabbitPasswordMatches(t *testing.T) {
	// Made by RabbitMQ 3.10.8, rabbit_password:hash(<<"guest">>), base64
	// encoded as definitions files hold it.
	const guest = "CWREuuNug77DdxOu/89aOFuWhPpiFgl2gkQaZPjRuqLPvmH7"
	for _, tc := range []struct {
		hash, password string
		want           bool
	}{
		{guest, "guest", true},
		{guest, "guesT", false},
		{"bm90IGEgaGFzaA==", "guest", false},
		{"%%%", "guest", false},
	} {
		if got := rabbitPasswordMatches(tc.hash, tc.password); got != tc.want {
			t.Errorf("rabbitPasswordMatches(%q, %q) = %v, want %v", tc.hash, tc.password, got, tc.want)
		}
	}
}

// bindSources maps the container path of each bind mount of svc to its
// source's path relative to root.
func bindSources(t *testing.T, p *types.Project, svc, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range p.Services[svc].Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel, err := filepath.Rel(root, v.Source)
		if err != nil {
			t.Fatal(err)
		}
		m[v.Target] = filepath.ToSlash(rel)
	}
	return m
}

// The development broker has the services' user, with the password of their
// AMQP_URL, and guest for the tests on the host; production mounts neither
// the configuration nor the definitions that make them, so the only user
// there is the one .env.prod names.
func TestRepositoryRabbitMQUsers(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(root, "docker-compose.yml")
	prod := filepath.Join(root, "docker-compose.prod.yml")

	p, _, err := loadProject(context.Background(), []string{dev}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mounts := bindSources(t, p, "rabbitmq", root)
	for target, source := range map[string]string{
		"/etc/rabbitmq/rabbitmq.conf":    "ops/rabbitmq/rabbitmq.conf",
		"/etc/rabbitmq/definitions.json": "ops/rabbitmq/definitions.json",
	} {
		if mounts[target] != source {
			t.Errorf("dev rabbitmq: %s is mounted from %q, want %s", target, mounts[target], source)
		}
	}
	conf, err := os.ReadFile(filepath.Join(root, "ops/rabbitmq/rabbitmq.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"load_definitions = /etc/rabbitmq/definitions.json", "loopback_users = none"} {
		if !bytes.Contains(conf, []byte("\n"+line+"\n")) {
			t.Errorf("ops/rabbitmq/rabbitmq.conf lacks the line %q", line)
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, "ops/rabbitmq/definitions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var defs rabbitDefinitions
	if err := json.Unmarshal(raw, &defs); err != nil {
		t.Fatalf("ops/rabbitmq/definitions.json: %v", err)
	}

	want := map[string]string{"guest": "guest"} // user -> password: the tests' default
	for _, svc := range []string{"api", "converter"} {
		env := p.Services[svc].Environment["AMQP_URL"]
		if env == nil {
			t.Fatalf("dev %s: no AMQP_URL", svc)
		}
		u, err := url.Parse(*env)
		if err != nil {
			t.Fatalf("dev %s AMQP_URL: %v", svc, err)
		}
		pass, _ := u.User.Password()
		want[u.User.Username()] = pass
	}
	for user, pass := range want {
		i := slices.IndexFunc(defs.Users, func(u rabbitUser) bool { return u.Name == user })
		if i < 0 {
			t.Errorf("definitions.json has no user %q", user)
			continue
		}
		u := defs.Users[i]
		if u.HashingAlgorithm != "rabbit_password_hashing_sha256" || !rabbitPasswordMatches(u.PasswordHash, pass) {
			t.Errorf("definitions.json: user %q's password_hash is not rabbit_password_hashing_sha256 of %q", user, pass)
		}
		// Creating the tests' vhosts through the management API needs it.
		if !slices.Contains(u.Tags, "administrator") {
			t.Errorf("definitions.json: user %q has tags %v, want administrator", user, u.Tags)
		}
		if !slices.ContainsFunc(defs.Permissions, func(p rabbitPermission) bool {
			return p.User == user && p.Vhost == "/" && p.Configure == ".*" && p.Write == ".*" && p.Read == ".*"
		}) {
			t.Errorf("definitions.json: user %q lacks every permission on vhost /", user)
		}
	}

	p, _, err = loadProject(context.Background(), []string{dev, prod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mounts = bindSources(t, p, "rabbitmq", root)
	for target, source := range mounts {
		if target != "/etc/rabbitmq/enabled_plugins" {
			t.Errorf("prod rabbitmq mounts %s at %s; only enabled_plugins is expected", source, target)
		}
	}
	if u := p.Services["rabbitmq"].Environment["RABBITMQ_DEFAULT_USER"]; u == nil || *u == "" || *u == "guest" {
		t.Errorf("prod rabbitmq RABBITMQ_DEFAULT_USER = %v, want a user other than guest", u)
	}
}
