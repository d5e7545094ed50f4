// validate_bundle runs runtime-tools' validate package (the checks that
// `oci-runtime-tool validate` makes) over OCI bundles:
//
//	validate_bundle [--host-specific] BUNDLE...
//
// For each bundle: validate.NewValidatorFromPath(bundle, hostSpecific,
// "linux"), then CheckAll(). It prints "oci-validate: BUNDLE: ok", or every
// error, one per line, and exits 1 if any bundle fails (2 on bad usage).
//
// As oci-runtime-tool does at its default --compliance-level (MUST), a
// violation below MUST level (SHOULD, MAY, ...) is printed as a warning and
// does not fail the bundle; everything else (MUST-level violations, JSON
// schema errors, errors without a level) fails it.
//
// Offline: CheckJSONSchema loads the schema from
// https://raw.githubusercontent.com/opencontainers/runtime-spec/vX.Y.Z/schema/.
// Requests there are answered from a local schema directory instead, the one
// Debian's golang-github-opencontainers-specs-dev ships (override it with
// $OCI_SCHEMA_DIR), so the check never touches the network. No other URL is
// served; a request for one fails.
//
// Built with Debian's Go packages, no modules:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 go build validate_bundle.go
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/hashicorp/go-multierror"
	rfc2119 "github.com/opencontainers/runtime-tools/error"
	"github.com/opencontainers/runtime-tools/specerror"
	"github.com/opencontainers/runtime-tools/validate"
	"github.com/sirupsen/logrus"
)

const (
	defaultSchemaDir = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema"
	schemaHost       = "raw.githubusercontent.com"
	schemaPathPrefix = "/opencontainers/runtime-spec/"
)

// localSchemas answers GETs of runtime-spec's schema files from dir, whatever
// the version in the URL; any other request fails.
type localSchemas struct {
	files http.RoundTripper
}

func (l localSchemas) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	if req.URL.Host == schemaHost && strings.HasPrefix(p, schemaPathPrefix) {
		// /opencontainers/runtime-spec/v1.0.2/schema/defs.json -> /defs.json
		rest := strings.TrimPrefix(p, schemaPathPrefix)
		if i := strings.Index(rest, "/schema/"); i >= 0 {
			r := req.Clone(req.Context())
			r.URL.Scheme = "file"
			r.URL.Host = ""
			r.URL.Path = rest[i+len("/schema"):]
			return l.files.RoundTrip(r)
		}
	}
	return nil, fmt.Errorf("validate_bundle is offline: no local copy of %s", req.URL)
}

// oneLine flattens an error's text onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// describe renders one error of CheckAll: its RFC 2119 level and the spec
// section it refers to when it has them.
func describe(e error) (text string, level rfc2119.Level, leveled bool) {
	var se *specerror.Error
	if errors.As(e, &se) {
		return fmt.Sprintf("%s: %s (%s)", se.Err.Level, oneLine(se.Err.Err.Error()), se.Err.Reference),
			se.Err.Level, true
	}
	var re *rfc2119.Error
	if errors.As(e, &re) {
		return fmt.Sprintf("%s: %s (%s)", re.Level, oneLine(re.Err.Error()), re.Reference), re.Level, true
	}
	return oneLine(e.Error()), 0, false
}

// check validates one bundle, printing its result; false when it fails.
func check(bundle string, hostSpecific bool) bool {
	v, err := validate.NewValidatorFromPath(bundle, hostSpecific, "linux")
	if err != nil {
		text, _, _ := describe(err)
		fmt.Printf("oci-validate: %s: error: %s\n", bundle, text)
		return false
	}
	err = v.CheckAll()
	if err == nil {
		fmt.Printf("oci-validate: %s: ok\n", bundle)
		return true
	}
	var errs []error
	if merr, ok := err.(*multierror.Error); ok {
		errs = merr.Errors
	} else {
		errs = []error{err}
	}
	failed := false
	for _, e := range errs {
		text, level, leveled := describe(e)
		if leveled && level < rfc2119.Must {
			fmt.Printf("oci-validate: %s: warning: %s\n", bundle, text)
			continue
		}
		fmt.Printf("oci-validate: %s: error: %s\n", bundle, text)
		failed = true
	}
	if !failed {
		fmt.Printf("oci-validate: %s: ok\n", bundle)
	}
	return !failed
}

func main() {
	hostSpecific := flag.Bool("host-specific", false,
		"also check against this host (mount types in /proc/filesystems, the last capability, ...)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [--host-specific] BUNDLE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	// The package logs its warnings (an executable missing from the rootfs,
	// mount types not checked without --host-specific) with logrus, to stderr.
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	schemaDir := os.Getenv("OCI_SCHEMA_DIR")
	if schemaDir == "" {
		schemaDir = defaultSchemaDir
	}
	if _, err := os.Stat(schemaDir + "/config-schema.json"); err != nil {
		fmt.Fprintf(os.Stderr, "validate_bundle: no runtime-spec JSON schema in %s (golang-github-opencontainers-specs-dev; or set OCI_SCHEMA_DIR): %v\n", schemaDir, err)
		os.Exit(2)
	}
	// gojsonschema fetches with http.Get, i.e. http.DefaultClient.
	http.DefaultClient.Transport = localSchemas{files: http.NewFileTransport(http.Dir(schemaDir))}

	ok := true
	for _, bundle := range flag.Args() {
		if !check(bundle, *hostSpecific) {
			ok = false
		}
	}
	if !ok {
		os.Exit(1)
	}
}
