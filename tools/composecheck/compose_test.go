package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// writeFiles writes name -> content under a new temporary directory and
// returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// goodDockerfile passes every check of dockerfile.check in a context with
// go.work and app/.
const goodDockerfile = `FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.work* ./
COPY app/ app/
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -o /out/app ./app
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER nonroot:nonroot
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
`

func TestComposeChecks(t *testing.T) {
	tests := []struct {
		name    string
		compose string
		wantErr []string // nil: no error
	}{
		{
			name: "fine",
			compose: `services:
  db:
    image: postgres:15
    healthcheck: {test: ["CMD", "pg_isready"]}
  app:
    build: {context: ., dockerfile: Dockerfile}
    depends_on: {db: {condition: service_healthy}}
  web:
    image: nginx
    depends_on: {app: {condition: service_healthy}}
    volumes: ["./app:/app:ro"]
`,
		},
		{
			name:    "unknown attribute",
			compose: "services:\n  db:\n    image: postgres:15\n    healthchek: {test: [\"CMD\", \"true\"]}\n",
			wantErr: []string{"healthchek"},
		},
		{
			name:    "unset variable",
			compose: "services:\n  db:\n    image: postgres:${PG_VERSION}\n",
			wantErr: []string{`"PG_VERSION" variable is not set`},
		},
		{
			name:    "required variable",
			compose: "services:\n  db:\n    image: postgres:${PG_VERSION:?set PG_VERSION}\n",
			wantErr: []string{"set PG_VERSION"},
		},
		{
			name: "waits for a service without healthcheck",
			compose: `services:
  db: {image: postgres:15}
  web:
    image: nginx
    depends_on: {db: {condition: service_healthy}}
`,
			wantErr: []string{"web: waits for db to be healthy, but db has no healthcheck"},
		},
		{
			name: "depends on a missing service",
			compose: `services:
  web:
    image: nginx
    depends_on: {db: {condition: service_started}}
`,
			wantErr: []string{"db"},
		},
		{
			name:    "missing bind source",
			compose: "services:\n  web:\n    image: nginx\n    volumes: [\"./nginx.conf:/etc/nginx/nginx.conf:ro\"]\n",
			wantErr: []string{"web: bind mount", "nginx.conf"},
		},
		{
			name:    "missing Dockerfile",
			compose: "services:\n  app:\n    build: {context: ., dockerfile: nope/Dockerfile}\n",
			wantErr: []string{"app: build", "nope/Dockerfile"},
		},
		{
			name:    "missing env_file",
			compose: "services:\n  web:\n    image: nginx\n    env_file: .env.missing\n",
			wantErr: []string{".env.missing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"compose.yml": tt.compose,
				"Dockerfile":  goodDockerfile,
				"go.work":     "go 1.26\n",
				"app/main.go": "package main\n",
			})
			p, _, err := loadProject(context.Background(), []string{filepath.Join(dir, "compose.yml")}, nil)
			if err == nil {
				err = checkProject(p, "")
			}
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestComposeEnvFileExampleAndReset(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"base.yml": `services:
  app:
    image: app
    ports: ["8080:8080", "8081:8081"]
    environment:
      DATABASE_URL: postgres://dev@db/dev
      LOG_FORMAT: text
  db:
    image: postgres:15
    ports: ["5432:5432"]
`,
		"prod.yml": `services:
  app:
    env_file: .env.prod
    ports: !override ["8080:8080"]
    environment:
      DATABASE_URL: !reset
      LOG_FORMAT: json
  db:
    ports: !reset []
`,
		".env.prod.example": "DATABASE_URL=postgres://prod@db/prod\n",
	})
	p, notes, err := loadProject(context.Background(), []string{filepath.Join(dir, "base.yml"), filepath.Join(dir, "prod.yml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], ".env.prod.example") {
		t.Errorf("notes = %q, want one about .env.prod.example", notes)
	}
	env := p.Services["app"].Environment
	for k, want := range map[string]string{"DATABASE_URL": "postgres://prod@db/prod", "LOG_FORMAT": "json"} {
		if got := env[k]; got == nil || *got != want {
			t.Errorf("app %s = %v, want %q", k, got, want)
		}
	}
	if err := checkPublished(p, []string{"app:8080"}); err != nil {
		t.Errorf("checkPublished: %v", err)
	}
	checkErr(t, checkPublished(p, []string{"app:8080", "db:5432"}), []string{"expected but not published: db:5432"})
	checkErr(t, checkRequiredEnv(p, []string{"app:DATABASE_URL", "app:AMQP_URL"}), []string{"app: AMQP_URL is not set"})
}

// TestRepositoryStacks checks the repository's own compose files say what
// they mean: the development stack publishes everything a developer uses;
// the production override publishes only the api and Grafana and takes its
// credentials from .env.prod.
func TestRepositoryStacks(t *testing.T) {
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
	if err := checkPublished(p, []string{
		"api:8080", "api:8081", "converter:8082", "ratesd:8090", "postgres:5432",
		"rabbitmq:5672", "rabbitmq:15672", "rabbitmq:15692",
		"jaeger:16686", "jaeger:4317", "jaeger:4318", "prometheus:9090", "grafana:3000",
	}); err != nil {
		t.Errorf("dev ports: %v", err)
	}
	wantEnv(t, p, "api", "AMQP_URL", "amqp://txpersister:txpersister@rabbitmq:5672/")
	wantEnv(t, p, "converter", "RATES_API_URL", "http://ratesd:8090/v1")
	wantEnv(t, p, "ratesd", "ECB_SOURCE", "")

	p, _, err = loadProject(context.Background(), []string{dev}, []string{"ECB_FILE=eurofxref-hist.zip"})
	if err != nil {
		t.Fatal(err)
	}
	wantEnv(t, p, "ratesd", "ECB_SOURCE", "/data/ecb/eurofxref-hist.zip")

	p, _, err = loadProject(context.Background(), []string{dev, prod}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPublished(p, []string{"api:8080", "grafana:3000"}); err != nil {
		t.Errorf("prod ports: %v", err)
	}
	wantEnv(t, p, "api", "DATABASE_URL", "postgres://postgres:CHANGE_ME_pg@postgres:5432/txpersister?sslmode=disable")
	wantEnv(t, p, "api", "AUTH_DISABLED", "false")
	wantEnv(t, p, "postgres", "POSTGRES_PASSWORD", "CHANGE_ME_pg")
	wantEnv(t, p, "grafana", "GF_AUTH_ANONYMOUS_ENABLED", "false")
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("prod %s: restart %q, want unless-stopped", name, s.Restart)
		}
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 || s.Deploy.Resources.Limits.NanoCPUs == 0 {
			t.Errorf("prod %s: no CPU and memory limits", name)
		}
	}
}

func wantEnv(t *testing.T, p *types.Project, svc, key, want string) {
	t.Helper()
	got := p.Services[svc].Environment[key]
	if got == nil || *got != want {
		t.Errorf("%s %s = %v, want %q", svc, key, got, want)
	}
}

// checkErr fails the test unless err contains every one of want, or is nil
// when want is nil.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err %q does not contain %q", err, w)
		}
	}
}
