package main

import _ "embed"

// openAPISpec is openapi.yaml, the API's contract, served at GET
// /openapi.yaml. go:embed needs a package-level variable; it is read-only.
//
//go:embed openapi.yaml
var openAPISpec []byte
