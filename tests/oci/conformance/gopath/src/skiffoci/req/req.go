// Package req is what the conformance harness and the in-container checker
// share: the requirement a result is about, how a TAP line cites it, and
// the annotations through which the harness tells the checker what to check.
// GOPATH mode (Debian's Go, offline): both programs build with
// GOPATH=/usr/share/gocode:<this gopath>.
package req

import (
	"errors"
	"fmt"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rfc2119 "github.com/opencontainers/runtime-tools/error"
	"github.com/opencontainers/runtime-tools/specerror"
)

// Annotations the harness sets and the checker reads.
const (
	// AreasAnnotation: the checker's areas to run (comma-separated).
	AreasAnnotation = "org.skiff.oci-check.areas"
	// HostNSAnnotation: the harness's own namespaces ("type:inode",
	// comma-separated), so that "a new namespace" can be checked.
	HostNSAnnotation = "org.skiff.oci-check.host-ns"
)

// Req is the requirement a check is about.
type Req struct {
	Section string         // where the property or operation is defined, e.g. "config.md#hostname"
	Code    specerror.Code // 0: no specerror code
	Name    string         // the code's name in specerror
	Level   rfc2119.Level  // for a requirement without a code
	Text    string         // what the spec requires
	HasLvl  bool           // Level is set
}

// Coded is a requirement runtime-tools' specerror names.
func Coded(section string, code specerror.Code, name, text string) Req {
	return Req{Section: section, Code: code, Name: name, Text: text}
}

// Plain is a requirement of the spec that specerror has no code for.
func Plain(section string, level rfc2119.Level, text string) Req {
	return Req{Section: section, Level: level, HasLvl: true, Text: text}
}

// Tag renders the requirement for the end of a result line: the section,
// then the specerror code's reference, level and name, e.g.
// "[config.md#root MUST RootReadonlyImplement]".
func (r Req) Tag() string {
	var parts []string
	if r.Code != 0 {
		ref, level := CodeRef(r.Code, r.Text)
		if r.Section != "" && r.Section != ref {
			parts = append(parts, r.Section)
		}
		parts = append(parts, ref+" "+level+" "+r.Name)
	} else {
		s := r.Section
		if r.HasLvl {
			s += " " + r.Level.String()
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// CodeRef is a specerror code's reference (the part after the spec
// version, e.g. "runtime.md#create") and RFC 2119 level.
func CodeRef(code specerror.Code, text string) (ref, level string) {
	var se *specerror.Error
	if !errors.As(specerror.NewError(code, errors.New(text), rspec.Version), &se) {
		return fmt.Sprintf("specerror code %#x", int64(code)), "?"
	}
	ref = se.Err.Reference
	if i := strings.Index(ref, "/blob/"); i >= 0 {
		ref = ref[i+len("/blob/"):]
		if j := strings.Index(ref, "/"); j >= 0 {
			ref = ref[j+1:]
		}
	}
	return ref, se.Err.Level.String()
}
