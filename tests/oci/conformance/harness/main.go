// oci_conformance runs an OCI runtime with a runc-compatible command line
// over generated bundles and reports, in TAP 13, which runtime-spec
// requirements it meets:
//
//	oci_conformance --runtime PATH [--root DIR] --checker PATH --work DIR
//	                [--run REGEX] [--skip REGEX] [--timeout 60s]
//
// Each case makes its bundles under WORK (a busybox rootfs: /bin/busybox
// from the host with the applet links sh, sleep, cat, echo and true; the
// checker as /bin/oci_check; the bundle's config.json again as
// /config.json), with a spec from runtime-tools' generate package
// (generate.New("linux") trimmed to what a simple runtime needs: pid, mount,
// ipc and uts namespaces, the default mounts, no network namespace, no
// seccomp, no device cgroup rules, no ambient capabilities, terminal
// false), then runs the runtime as runc is run:
//
//	RUNTIME [--root ROOT] create --bundle BUNDLE ID
//	RUNTIME [--root ROOT] start|state|delete ID, kill ID SIGNAL, delete --force ID
//
// The container's stdout and stderr are create's own, given as files in the
// case's directory (runc, like skiff, hands its stdio to the container).
// Lifecycle and hook cases drive the operations and check the state the
// runtime reports; the other cases run the checker in the container and
// turn each line it prints into a TAP result.
//
// Every result line names the requirement it checks: the section of the
// runtime-spec, and where runtime-tools' specerror has a code for it, the
// code's reference, RFC 2119 level and name. A failure is followed by
// "# " lines: the requirement's text and what went wrong. Then "1..N" and
//
//	oci-conformance: P passed, F failed, S skipped of N
//
// Exit status 0 iff nothing failed, 1 otherwise, 2 on bad usage. A case
// cleans up after itself (delete --force of its containers, removal of its
// directory) whatever happened. --run runs only the cases whose name
// matches; --skip reports the matching ones as skipped without running
// them (without it, a case whose spec the runtime refuses at create fails).
// --timeout bounds each runtime command and each wait.
//
// Built with Debian's Go packages, no modules:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 go build -o oci_conformance main.go
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blang/semver"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rfc2119 "github.com/opencontainers/runtime-tools/error"
	"github.com/opencontainers/runtime-tools/generate"
	"github.com/opencontainers/runtime-tools/specerror"
	ocireq "skiffoci/req"
)

// --- requirements ------------------------------------------------------------

const (
	areasAnnotation  = ocireq.AreasAnnotation
	hostNSAnnotation = ocireq.HostNSAnnotation
)

// The requirements' type and how a line cites one: shared with the
// other program of the suite (gopath/src/skiffoci/req).
type req = ocireq.Req

var (
	coded = ocireq.Coded
	plain = ocireq.Plain
)

var (
	reqQueryNonExist = coded("", specerror.QueryNonExistGenError, "QueryNonExistGenError",
		"Attempting to query a container that does not exist MUST generate an error.")
	reqQueryState = coded("", specerror.QueryStateImplement, "QueryStateImplement",
		"This operation MUST return the state of a container as specified in the State section.")
	reqStateVersion = plain("runtime.md#state", rfc2119.Required,
		"ociVersion (string, REQUIRED) is version of the Open Container Initiative Runtime Specification with which the state complies.")
	reqStateID = coded("runtime.md#state", specerror.StateIDUniq, "StateIDUniq",
		"id (string, REQUIRED) is the container's ID. This MUST be unique across all containers on this host.")
	reqStateStatus = plain("runtime.md#state", rfc2119.Required,
		"status (string, REQUIRED) is the runtime state of the container: creating, created, running or stopped.")
	reqStatePid = plain("runtime.md#state", rfc2119.Required,
		"pid (int, REQUIRED when status is created or running on Linux) is the ID of the container process.")
	reqStateBundle = plain("runtime.md#state", rfc2119.Required,
		"bundle (string, REQUIRED) is the absolute path to the container's bundle directory.")
	reqCreate = coded("", specerror.CreateNewContainer, "CreateNewContainer",
		"This operation MUST create a new container.")
	reqEnvCreate = coded("runtime.md#create", specerror.EnvCreateImplement, "EnvCreateImplement",
		"The container's runtime environment MUST be created according to the configuration in config.json.")
	reqArgsUntilStart = coded("", specerror.ProcArgsApplyUntilStart, "ProcArgsApplyUntilStart",
		"process.args MUST NOT be applied until triggered by the start operation.")
	reqUniqueID = coded("", specerror.CreateWithUniqueID, "CreateWithUniqueID",
		"If the ID provided is not unique across all containers within the scope of the runtime, or is not valid in any other way, the implementation MUST generate an error and a new container MUST NOT be created.")
	reqErrorsUnchanged = coded("", specerror.ErrorsLeaveStateUnchange, "ErrorsLeaveStateUnchange",
		"Unless otherwise stated, generating an error MUST leave the state of the environment as if the operation were never attempted.")
	reqStartProc = coded("", specerror.StartProcImplement, "StartProcImplement",
		"start operation MUST run the user-specified program as specified by process.")
	reqStartNotCreatedErr = coded("", specerror.StartNotCreatedGenError, "StartNotCreatedGenError",
		"Attempting to start a container that is not created MUST generate an error.")
	reqStartNotCreatedNoEffect = coded("", specerror.StartNotCreatedHaveNoEffect, "StartNotCreatedHaveNoEffect",
		"Attempting to start a container that is not created MUST have no effect on the container.")
	reqKillSignal = coded("", specerror.KillSignalImplement, "KillSignalImplement",
		"kill operation MUST send the specified signal to the container process.")
	reqKillNotRunningErr = coded("", specerror.KillNonCreateRunGenError, "KillNonCreateRunGenError",
		"Attempting to send a signal to a container that is neither created nor running MUST generate an error.")
	reqKillNotRunningNoEffect = coded("", specerror.KillNonCreateRunHaveNoEffect, "KillNonCreateRunHaveNoEffect",
		"Attempting to send a signal to a container that is neither created nor running MUST have no effect on the container.")
	reqDeleteNotStoppedErr = coded("", specerror.DeleteNonStopGenError, "DeleteNonStopGenError",
		"Attempting to delete a container that is not stopped MUST generate an error.")
	reqDeleteNotStoppedNoEffect = coded("", specerror.DeleteNonStopHaveNoEffect, "DeleteNonStopHaveNoEffect",
		"Attempting to delete a container that is not stopped MUST have no effect on the container.")
	reqDeleteRes = coded("", specerror.DeleteResImplement, "DeleteResImplement",
		"Deleting a container MUST delete the resources that were created during the create step.")
	reqDeleteOnlyCreated = coded("", specerror.DeleteOnlyCreatedRes, "DeleteOnlyCreatedRes",
		"Resources associated with the container, but not created by this container, MUST NOT be deleted.")
	reqSameContainer = coded("runtime.md#lifecycle", specerror.EntityOperSameContainer, "EntityOperSameContainer",
		"The entity using a runtime to create a container MUST be able to use the operations defined in this specification against that same container (the process exiting does not delete it: it stays stopped until delete).")
	reqPrestartInvoke = coded("config.md#prestart", specerror.PrestartHooksInvoke, "PrestartHooksInvoke",
		"The prestart hooks MUST be invoked by the runtime (as part of create).")
	reqCreateRuntimeInvoke = plain("config.md#createruntime-hooks", rfc2119.Must,
		"The createRuntime hooks MUST be invoked by the runtime as part of create, after the prestart hooks.")
	reqPoststartInvoke = coded("config.md#poststart", specerror.PoststartHooksInvoke, "PoststartHooksInvoke",
		"The poststart hooks MUST be invoked by the runtime.")
	reqPoststartTiming = coded("", specerror.PoststartTiming, "PoststartTiming",
		"The post-start hooks MUST be called after the user-specified process is executed but before the start operation returns.")
	reqPoststopInvoke = coded("config.md#poststop", specerror.PoststopHooksInvoke, "PoststopHooksInvoke",
		"The poststop hooks MUST be invoked by the runtime.")
	reqPoststopTiming = coded("", specerror.PoststopTiming, "PoststopTiming",
		"The post-stop hooks MUST be called after the container is deleted but before the delete operation returns.")
	reqHooksOrder = plain("runtime.md#lifecycle", rfc2119.Must,
		"prestart, then createRuntime (both in create), poststart (in start), poststop (in delete).")
	reqHooksStdin = coded("", specerror.PosixHooksStateToStdin, "PosixHooksStateToStdin",
		"The state of the container MUST be passed to hooks over stdin so that they may do work appropriate to the current state of the container.")
	reqHooksRuntimeNS = plain("config.md#posix-platform-hooks", rfc2119.Must,
		"prestart, createRuntime, poststart and poststop hooks MUST be called in the runtime namespace.")
	reqPrestartFail = coded("", specerror.PrestartHookFailGenError, "PrestartHookFailGenError",
		"If any prestart hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at step 9 (destroy it).")
	reqCreateRuntimeFail = plain("runtime.md#lifecycle", rfc2119.Must,
		"If any createRuntime hook fails, the runtime MUST generate an error, stop the container, and continue the lifecycle at the destroy step.")
	reqChecker = plain("runtime.md#lifecycle", rfc2119.Must,
		"the checker, run as the container's process, runs to its end and reports (its last line \"# oci_check: ...\").")
)

// --- TAP ---------------------------------------------------------------------

type tap struct {
	n, passed, failed, skipped int
}

func (t *tap) emit(status, line string, diag []string) {
	t.n++
	fmt.Printf("%s %d - %s\n", status, t.n, line)
	for _, d := range diag {
		for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
			fmt.Printf("#   %s\n", l)
		}
	}
}

// --- the runtime -------------------------------------------------------------

type harness struct {
	runtime, root, checker, work string
	timeout                      time.Duration
	hostNS                       string // the annotation's value
	mntNS                        string // readlink /proc/self/ns/mnt
	tap                          tap
	seq                          int
}

type cmdResult struct {
	argv     []string
	err      error
	timedOut bool
	stdout   string
	stderr   string
}

func (r cmdResult) ok() bool { return r.err == nil }

// describe is one line about the command and how it ended.
func (r cmdResult) describe() string {
	s := strings.Join(r.argv, " ")
	switch {
	case r.timedOut:
		s += ": timed out"
	case r.err != nil:
		s += ": " + r.err.Error()
	default:
		s += ": exit 0"
	}
	if e := strings.TrimSpace(r.stderr); e != "" {
		s += "; stderr: " + tail(e, 600)
	}
	return s
}

func tail(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// run runs the runtime with args in dir. Its stdout and stderr go to the
// given files, or else to files of its own in dir, read back when it ends
// (files, not pipes: a runtime that leaves a process holding its stdio
// must not hang the harness). On the timeout the command's process group
// is killed.
func (h *harness) run(dir string, stdout, stderr *os.File, args ...string) (res cmdResult) {
	argv := []string{h.runtime}
	if h.root != "" {
		argv = append(argv, "--root", h.root)
	}
	argv = append(argv, args...)
	res.argv = argv
	var outPath, errPath string
	if stdout == nil || stderr == nil {
		h.seq++
		outPath = filepath.Join(dir, fmt.Sprintf("cmd-%d.stdout", h.seq))
		errPath = filepath.Join(dir, fmt.Sprintf("cmd-%d.stderr", h.seq))
		o, err1 := os.Create(outPath)
		e, err2 := os.Create(errPath)
		if err1 != nil || err2 != nil {
			res.err = fmt.Errorf("output files in %s: %v %v", dir, err1, err2)
			return res
		}
		defer func() {
			o.Close()
			e.Close()
			b, _ := os.ReadFile(outPath)
			res.stdout = string(b)
			b, _ = os.ReadFile(errPath)
			res.stderr = string(b)
			os.Remove(outPath)
			os.Remove(errPath)
		}()
		stdout, stderr = o, e
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		res.err = err
		return res
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		res.err = err
	case <-time.After(h.timeout):
		res.timedOut = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		res.err = <-done
		if res.err == nil {
			res.err = errors.New("killed")
		}
	}
	return res
}

// --- a case ------------------------------------------------------------------

type T struct {
	h    *harness
	name string
	dir  string
	ids  []string
	fail bool
}

func (t *T) pass(what string, r req) {
	t.h.tap.passed++
	t.h.tap.emit("ok", fmt.Sprintf("%s: %s %s", t.name, what, r.Tag()), nil)
}

func (t *T) notOK(what string, r req, diag ...string) {
	t.fail = true
	t.h.tap.failed++
	t.h.tap.emit("not ok", fmt.Sprintf("%s: %s %s", t.name, what, r.Tag()), append([]string{r.Text}, diag...))
}

// check reports cond; diag explains a failure.
func (t *T) check(cond bool, what string, r req, diag ...string) bool {
	if cond {
		t.pass(what, r)
	} else {
		t.notOK(what, r, diag...)
	}
	return cond
}

// id is a container id for this case, unique to this run.
func (t *T) id(suffix string) string {
	clean := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.name, "-")
	return fmt.Sprintf("occ-%d-%s-%s", os.Getpid(), strings.ToLower(clean), suffix)
}

// spec is generate.New("linux") trimmed to what a simple runtime needs.
func (t *T) spec(args ...string) *generate.Generator {
	g, err := generate.New("linux")
	if err != nil {
		panic(err)
	}
	g.SetProcessArgs(args)
	g.SetProcessTerminal(false)
	if err := g.RemoveLinuxNamespace("network"); err != nil {
		panic(err)
	}
	g.Config.Linux.Seccomp = nil
	g.Config.Linux.Resources = nil
	g.Config.Process.Capabilities.Ambient = nil
	g.AddAnnotation(hostNSAnnotation, t.h.hostNS)
	return &g
}

// bundle writes a bundle named name under the case's directory: the
// rootfs, config.json, and config.json again as /config.json in the rootfs.
func (t *T) bundle(name string, g *generate.Generator) (string, error) {
	dir := filepath.Join(t.dir, name)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "dev", "proc", "sys", "mnt", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "tmp"), 0o777); err != nil {
		return "", err
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777); err != nil {
		return "", err
	}
	if err := copyFile("/bin/busybox", filepath.Join(rootfs, "bin", "busybox"), 0o755); err != nil {
		return "", err
	}
	for _, applet := range []string{"sh", "sleep", "cat", "echo", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			return "", err
		}
	}
	if err := copyFile(t.h.checker, filepath.Join(rootfs, "bin", "oci_check"), 0o755); err != nil {
		return "", err
	}
	config := filepath.Join(dir, "config.json")
	if err := g.SaveToFile(config, generate.ExportOptions{}); err != nil {
		return "", err
	}
	if err := copyFile(config, filepath.Join(rootfs, "config.json"), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(to, mode)
}

// outPath is where the container id's stdout (or stderr) goes.
func (t *T) outPath(id, stream string) string {
	return filepath.Join(t.dir, id+"."+stream)
}

// create runs `create --bundle B ID`, create's stdout and stderr (and so
// the container's) going to files in the case's directory.
func (t *T) create(bundle, id string) cmdResult {
	t.track(id)
	o, err1 := os.OpenFile(t.outPath(id, "stdout"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	e, err2 := os.OpenFile(t.outPath(id, "stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err1 != nil || err2 != nil {
		return cmdResult{argv: []string{"create", id}, err: fmt.Errorf("%v %v", err1, err2)}
	}
	// The container may run as another user: let it write to them.
	os.Chmod(t.outPath(id, "stdout"), 0o666)
	os.Chmod(t.outPath(id, "stderr"), 0o666)
	defer o.Close()
	defer e.Close()
	offset, _ := e.Seek(0, io.SeekEnd)
	res := t.h.run(bundle, o, e, "create", "--bundle", bundle, id)
	if b, err := os.ReadFile(t.outPath(id, "stderr")); err == nil && int64(len(b)) >= offset {
		res.stderr = string(b[offset:])
	}
	return res
}

func (t *T) track(id string) {
	for _, i := range t.ids {
		if i == id {
			return
		}
	}
	t.ids = append(t.ids, id)
}

func (t *T) op(args ...string) cmdResult { return t.h.run(t.dir, nil, nil, args...) }

// state runs `state ID` and parses its JSON.
func (t *T) state(id string) (*rspec.State, cmdResult, error) {
	res := t.op("state", id)
	if !res.ok() {
		return nil, res, errors.New(res.describe())
	}
	var st rspec.State
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		return nil, res, fmt.Errorf("state's output is not a State: %v: %q", err, tail(res.stdout, 300))
	}
	return &st, res, nil
}

// waitStatus polls state until the status is want (or the timeout).
func (t *T) waitStatus(id string, want rspec.ContainerState) (*rspec.State, error) {
	deadline := time.Now().Add(t.h.timeout)
	for {
		st, _, err := t.state(id)
		if err == nil && st.Status == want {
			return st, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return st, fmt.Errorf("status still %q after %v", st.Status, t.h.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOutput polls the container's stdout until it holds marker.
func (t *T) waitOutput(id, marker string) (string, bool) {
	deadline := time.Now().Add(t.h.timeout)
	for {
		b, _ := os.ReadFile(t.outPath(id, "stdout"))
		if strings.Contains(string(b), marker) {
			return string(b), true
		}
		if time.Now().After(deadline) {
			return string(b), false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (t *T) output(id, stream string) string {
	b, _ := os.ReadFile(t.outPath(id, stream))
	return string(b)
}

// cleanup deletes the case's containers (delete --force) and its directory.
func (t *T) cleanup() {
	for i := len(t.ids) - 1; i >= 0; i-- {
		t.op("delete", "--force", t.ids[i])
	}
	if err := os.RemoveAll(t.dir); err != nil {
		fmt.Printf("# %s: cleanup: %v\n", t.name, err)
	}
}

// sameBundle compares a state's bundle with the bundle's path.
func sameBundle(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := filepath.EvalSymlinks(got)
	w, err2 := filepath.EvalSymlinks(want)
	return err1 == nil && err2 == nil && g == w
}

func stateLine(st *rspec.State) string {
	if st == nil {
		return "no state"
	}
	b, _ := json.Marshal(st)
	return "state: " + string(b)
}

// --- lifecycle cases ---------------------------------------------------------

// A process that reports it runs, reports a TERM, and otherwise stays.
const runningScript = `trap 'echo got-TERM; exit 0' TERM; echo lifecycle-started; while :; do sleep 1; done`

// createStarted creates and starts a container running script; false
// (with the failure reported) when that did not work.
func (t *T) createStarted(id, script, marker string) (string, *rspec.State, bool) {
	b, err := t.bundle(id, t.spec("sh", "-c", script))
	if err != nil {
		t.notOK("make the bundle", reqCreate, err.Error())
		return "", nil, false
	}
	if res := t.create(b, id); !res.ok() {
		t.notOK("create succeeds", reqCreate, res.describe())
		return b, nil, false
	}
	if res := t.op("start", id); !res.ok() {
		t.notOK("start succeeds", reqStartProc, res.describe())
		return b, nil, false
	}
	if out, ok := t.waitOutput(id, marker); !ok {
		t.notOK("the process runs (its output appears)", reqStartProc,
			fmt.Sprintf("no %q in its stdout after %v: %q", marker, t.h.timeout, tail(out, 300)),
			"stderr: "+tail(t.output(id, "stderr"), 300))
		return b, nil, false
	}
	st, _, err := t.state(id)
	if err != nil {
		t.notOK("state of the started container", reqQueryState, err.Error())
		return b, nil, false
	}
	return b, st, true
}

func caseStateUnknown(t *T) {
	id := t.id("never-created")
	res := t.op("state", id)
	t.check(!res.ok(), "state of an id that was never created fails", reqQueryNonExist,
		"it succeeded: "+tail(res.stdout, 300))
}

func caseCreate(t *T) {
	id := t.id("c")
	b, err := t.bundle("bundle", t.spec("sh", "-c", "echo lifecycle-ran"))
	if err != nil {
		t.notOK("make the bundle", reqCreate, err.Error())
		return
	}
	res := t.create(b, id)
	if !t.check(res.ok(), "create --bundle B ID succeeds", reqCreate, res.describe()) {
		return
	}
	st, _, err := t.state(id)
	if !t.check(err == nil, "state of the created container succeeds and is a State", reqQueryState, fmt.Sprint(err)) {
		return
	}
	t.check(st.Status == rspec.StateCreated, `status is "created"`, reqStateStatus, stateLine(st))
	t.check(st.ID == id, "id is the container's id", reqStateID, stateLine(st))
	_, verr := semver.Parse(st.Version)
	t.check(verr == nil, fmt.Sprintf("ociVersion %q is a SemVer version", st.Version), reqStateVersion, stateLine(st))
	t.check(filepath.IsAbs(st.Bundle) && sameBundle(st.Bundle, b), "bundle is the bundle's absolute path", reqStateBundle,
		"expected "+b, stateLine(st))
	t.check(st.Pid > 0, "pid of the created container is > 0", reqStatePid, stateLine(st))
	time.Sleep(200 * time.Millisecond)
	out := t.output(id, "stdout")
	t.check(!strings.Contains(out, "lifecycle-ran"), "the process has not run before start", reqArgsUntilStart,
		"its output is already there: "+tail(out, 200))
}

func caseCreateDuplicate(t *T) {
	id := t.id("dup")
	first, err1 := t.bundle("first", t.spec("sh", "-c", "echo first-ran"))
	second, err2 := t.bundle("second", t.spec("sh", "-c", "echo second-ran"))
	if err1 != nil || err2 != nil {
		t.notOK("make the bundles", reqCreate, fmt.Sprint(err1, err2))
		return
	}
	if res := t.create(first, id); !t.check(res.ok(), "create of the first container succeeds", reqCreate, res.describe()) {
		return
	}
	before, _, err := t.state(id)
	if err != nil {
		t.notOK("state of the first container", reqQueryState, err.Error())
		return
	}
	res := t.create(second, id)
	t.check(!res.ok(), "a second create with the id in use fails", reqUniqueID, "it succeeded: "+res.describe())
	after, _, err := t.state(id)
	if !t.check(err == nil, "the first container still exists", reqErrorsUnchanged, fmt.Sprint(err)) {
		return
	}
	t.check(after.Status == rspec.StateCreated && after.Pid == before.Pid && sameBundle(after.Bundle, first),
		"the first container is unaffected (created, same pid and bundle)", reqErrorsUnchanged,
		"before: "+stateLine(before), "after: "+stateLine(after))
}

func caseStart(t *T) {
	id := t.id("s")
	b, err := t.bundle("bundle", t.spec("sh", "-c", runningScript))
	if err != nil {
		t.notOK("make the bundle", reqCreate, err.Error())
		return
	}
	if res := t.create(b, id); !t.check(res.ok(), "create succeeds", reqCreate, res.describe()) {
		return
	}
	created, _, _ := t.state(id)
	res := t.op("start", id)
	if !t.check(res.ok(), "start of the created container succeeds", reqStartProc, res.describe()) {
		return
	}
	out, ok := t.waitOutput(id, "lifecycle-started")
	t.check(ok, "the process runs: its output appears", reqStartProc,
		fmt.Sprintf("no output after %v: %q", t.h.timeout, tail(out, 300)), "stderr: "+tail(t.output(id, "stderr"), 300))
	st, _, err := t.state(id)
	if !t.check(err == nil, "state of the started container succeeds", reqQueryState, fmt.Sprint(err)) {
		return
	}
	t.check(st.Status == rspec.StateRunning, `status is "running"`, reqStateStatus, stateLine(st))
	t.check(st.Pid > 0 && (created == nil || st.Pid == created.Pid), "pid is > 0 and the one it had when created", reqStatePid,
		"created: "+stateLine(created), "running: "+stateLine(st))

	res = t.op("start", id)
	t.check(!res.ok(), "start of a running container fails", reqStartNotCreatedErr, "it succeeded: "+res.describe())
	time.Sleep(300 * time.Millisecond)
	st2, _, err := t.state(id)
	out = t.output(id, "stdout")
	t.check(err == nil && st2.Status == rspec.StateRunning && st2.Pid == st.Pid && strings.Count(out, "lifecycle-started") == 1,
		"the running container is unaffected (still running, same pid, the program not run again)", reqStartNotCreatedNoEffect,
		fmt.Sprint(err), stateLine(st2), "stdout: "+tail(out, 200))
}

func caseKill(t *T) {
	id := t.id("k")
	_, st, ok := t.createStarted(id, runningScript, "lifecycle-started")
	if !ok {
		return
	}
	t.check(st.Status == rspec.StateRunning, `status is "running" before the kill`, reqStateStatus, stateLine(st))
	res := t.op("kill", id, "TERM")
	if !t.check(res.ok(), "kill ID TERM of the running container succeeds", reqKillSignal, res.describe()) {
		return
	}
	out, got := t.waitOutput(id, "got-TERM")
	t.check(got, "the process got SIGTERM (its trap ran)", reqKillSignal, "stdout: "+tail(out, 200))
	stopped, err := t.waitStatus(id, rspec.StateStopped)
	if !t.check(err == nil, `status becomes "stopped"`, reqStateStatus, fmt.Sprint(err), stateLine(stopped)) {
		return
	}
	res = t.op("kill", id, "TERM")
	t.check(!res.ok(), "kill of the stopped container fails", reqKillNotRunningErr, "it succeeded: "+res.describe())
	st2, _, err := t.state(id)
	t.check(err == nil && st2.Status == rspec.StateStopped, "the stopped container is unaffected by the kill (still stopped)",
		reqKillNotRunningNoEffect, fmt.Sprint(err), stateLine(st2))
	res = t.op("start", id)
	t.check(!res.ok(), "start of the stopped container fails", reqStartNotCreatedErr, "it succeeded: "+res.describe())
	time.Sleep(300 * time.Millisecond)
	st3, _, err := t.state(id)
	out = t.output(id, "stdout")
	t.check(err == nil && st3.Status == rspec.StateStopped && strings.Count(out, "lifecycle-started") == 1,
		"the stopped container is unaffected by the start (still stopped, the program not run again)",
		reqStartNotCreatedNoEffect, fmt.Sprint(err), stateLine(st3), "stdout: "+tail(out, 200))
}

func caseDeleteRunning(t *T) {
	id := t.id("dr")
	_, st, ok := t.createStarted(id, runningScript, "lifecycle-started")
	if !ok {
		return
	}
	res := t.op("delete", id)
	t.check(!res.ok(), "delete (without --force) of a running container fails", reqDeleteNotStoppedErr,
		"it succeeded: "+res.describe())
	st2, _, err := t.state(id)
	t.check(err == nil && st2.Status == rspec.StateRunning && st2.Pid == st.Pid,
		"the container is unaffected (still running, same pid)", reqDeleteNotStoppedNoEffect,
		fmt.Sprint(err), "before: "+stateLine(st), "after: "+stateLine(st2))
}

func caseExit(t *T) {
	id := t.id("x")
	b, _, ok := t.createStarted(id, "echo lifecycle-exited", "lifecycle-exited")
	if !ok {
		return
	}
	st, err := t.waitStatus(id, rspec.StateStopped)
	if !t.check(err == nil, `when the process exits, status becomes "stopped"`, reqStateStatus, fmt.Sprint(err), stateLine(st)) {
		return
	}
	time.Sleep(500 * time.Millisecond)
	st2, _, err := t.state(id)
	t.check(err == nil && st2.Status == rspec.StateStopped, "the exit does not delete it: state still says stopped",
		reqSameContainer, fmt.Sprint(err), stateLine(st2))
	res := t.op("delete", id)
	if !t.check(res.ok(), "delete of the stopped container succeeds", reqDeleteRes, res.describe()) {
		return
	}
	res = t.op("state", id)
	t.check(!res.ok(), "state of its id fails after the delete", reqDeleteRes, "it succeeded: "+tail(res.stdout, 300))
	_, err1 := os.Stat(filepath.Join(b, "config.json"))
	_, err2 := os.Stat(filepath.Join(b, "rootfs", "bin", "busybox"))
	t.check(err1 == nil && err2 == nil, "the bundle (not created by the container) is still there", reqDeleteOnlyCreated,
		fmt.Sprint(err1, err2))
}

// --- hooks -------------------------------------------------------------------

// hookScript records that hook NAME ran, with its mount namespace, in
// DIR/hooks.log, and the state it got on stdin in DIR/state-NAME.json.
const hookScript = `#!/bin/sh
# hook.sh NAME DIR
echo "$1 $(readlink /proc/self/ns/mnt)" >> "$2/hooks.log"
cat > "$2/state-$1.json"
`

var hookEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

type hookRun struct{ name, ns string }

func (t *T) hookLog() []hookRun {
	b, _ := os.ReadFile(filepath.Join(t.dir, "hooks.log"))
	var out []hookRun
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(l); len(f) >= 1 {
			h := hookRun{name: f[0]}
			if len(f) > 1 {
				h.ns = f[1]
			}
			out = append(out, h)
		}
	}
	return out
}

func has(runs []hookRun, name string) bool {
	for _, r := range runs {
		if r.name == name {
			return true
		}
	}
	return false
}

// writeHookScript writes hook.sh into the case's directory; a hook that runs
// it as NAME records itself in the case's hooks.log.
func (t *T) writeHookScript() (func(name string) rspec.Hook, error) {
	script := filepath.Join(t.dir, "hook.sh")
	if err := os.WriteFile(script, []byte(hookScript), 0o755); err != nil {
		return nil, err
	}
	return func(name string) rspec.Hook {
		return rspec.Hook{Path: "/bin/sh", Args: []string{"sh", script, name, t.dir}, Env: hookEnv}
	}, nil
}

func hookNames(runs []hookRun) string {
	var n []string
	for _, r := range runs {
		n = append(n, r.name)
	}
	return "[" + strings.Join(n, " ") + "]"
}

func caseHooks(t *T) {
	id := t.id("h")
	hook, err := t.writeHookScript()
	if err != nil {
		t.notOK("write the hook script", reqPrestartInvoke, err.Error())
		return
	}
	g := t.spec("sh", "-c", "echo hooks-ran")
	g.Config.Hooks = &rspec.Hooks{
		Prestart:      []rspec.Hook{hook("prestart")},
		CreateRuntime: []rspec.Hook{hook("createRuntime")},
		Poststart:     []rspec.Hook{hook("poststart")},
		Poststop:      []rspec.Hook{hook("poststop")},
	}
	b, err := t.bundle("bundle", g)
	if err != nil {
		t.notOK("make the bundle", reqCreate, err.Error())
		return
	}
	res := t.create(b, id)
	if !t.check(res.ok(), "create with the four hooks succeeds", reqCreate, res.describe()) {
		return
	}
	log := t.hookLog()
	t.check(has(log, "prestart"), "the prestart hook ran by the time create returned", reqPrestartInvoke, "hooks run: "+hookNames(log))
	t.check(has(log, "createRuntime"), "the createRuntime hook ran by the time create returned", reqCreateRuntimeInvoke, "hooks run: "+hookNames(log))
	// Whether poststart waited for start is hooks.poststart-timing's.

	res = t.op("start", id)
	if !t.check(res.ok(), "start succeeds", reqStartProc, res.describe()) {
		return
	}
	log = t.hookLog()
	t.check(has(log, "poststart"), "the poststart hook ran by the time start returned", reqPoststartInvoke, "hooks run: "+hookNames(log))
	if _, ok := t.waitOutput(id, "hooks-ran"); !ok {
		t.notOK("the process runs", reqStartProc, "no output", "stderr: "+tail(t.output(id, "stderr"), 300))
	}
	if _, err := t.waitStatus(id, rspec.StateStopped); err != nil {
		t.notOK(`the container becomes "stopped"`, reqStateStatus, err.Error())
		return
	}
	log = t.hookLog()
	t.check(!has(log, "poststop"), "the poststop hook did not run before delete", reqPoststopTiming, "hooks run: "+hookNames(log))
	res = t.op("delete", id)
	if !t.check(res.ok(), "delete succeeds", reqDeleteRes, res.describe()) {
		return
	}
	log = t.hookLog()
	t.check(has(log, "poststop"), "the poststop hook ran by the time delete returned", reqPoststopInvoke, "hooks run: "+hookNames(log))
	t.check(hookNames(log) == "[prestart createRuntime poststart poststop]",
		"the hooks ran once each, in order: prestart createRuntime poststart poststop", reqHooksOrder, "hooks run: "+hookNames(log))

	for _, name := range []string{"prestart", "createRuntime", "poststart", "poststop"} {
		var ns string
		for _, r := range log {
			if r.name == name {
				ns = r.ns
			}
		}
		if ns == "" {
			continue // reported above
		}
		t.check(ns == t.h.mntNS, name+" ran in the runtime's mount namespace", reqHooksRuntimeNS,
			fmt.Sprintf("expected %s, got %s", t.h.mntNS, ns))
		data, err := os.ReadFile(filepath.Join(t.dir, "state-"+name+".json"))
		var st rspec.State
		if err == nil {
			err = json.Unmarshal(data, &st)
		}
		t.check(err == nil && st.ID == id && sameBundle(st.Bundle, b),
			name+" got the container's state on stdin (its id and bundle)", reqHooksStdin,
			fmt.Sprint(err), fmt.Sprintf("expected id %s bundle %s; stdin: %q", id, b, tail(string(data), 300)))
	}
}

// casePoststartTiming: the poststart hooks run in start, after the
// process is executed, not in create.
func casePoststartTiming(t *T) {
	id := t.id("ps")
	hook, err := t.writeHookScript()
	if err != nil {
		t.notOK("write the hook script", reqPoststartTiming, err.Error())
		return
	}
	g := t.spec("sh", "-c", "echo poststart-timing-ran")
	g.Config.Hooks = &rspec.Hooks{Poststart: []rspec.Hook{hook("poststart")}}
	b, err := t.bundle("bundle", g)
	if err != nil {
		t.notOK("make the bundle", reqCreate, err.Error())
		return
	}
	if res := t.create(b, id); !t.check(res.ok(), "create with a poststart hook succeeds", reqCreate, res.describe()) {
		return
	}
	log := t.hookLog()
	t.check(!has(log, "poststart"), "the poststart hook has not run when create returns (start was not called yet)",
		reqPoststartTiming, "hooks run after create: "+hookNames(log))
	res := t.op("start", id)
	if !t.check(res.ok(), "start succeeds", reqStartProc, res.describe()) {
		return
	}
	log = t.hookLog()
	t.check(has(log, "poststart"), "the poststart hook ran by the time start returned", reqPoststartTiming,
		"hooks run after start: "+hookNames(log))
}

// hookFails: a failing hook of the kind makes create fail and leaves no
// container.
func hookFails(t *T, kind string, r req) {
	id := t.id("hf")
	g := t.spec("sh", "-c", "echo should-not-run")
	failing := []rspec.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo " + kind + " hook fails on purpose >&2; exit 1"}, Env: hookEnv}}
	g.Config.Hooks = &rspec.Hooks{}
	if kind == "prestart" {
		g.Config.Hooks.Prestart = failing
	} else {
		g.Config.Hooks.CreateRuntime = failing
	}
	b, err := t.bundle("bundle", g)
	if err != nil {
		t.notOK("make the bundle", reqCreate, err.Error())
		return
	}
	res := t.create(b, id)
	t.check(!res.ok(), "create with a failing "+kind+" hook fails", r, "it succeeded: "+res.describe())
	st, sres, err := t.state(id)
	t.check(err != nil, "no container is left (state of its id fails)", r,
		"state succeeded: "+stateLine(st), tail(sres.stdout, 200))
	time.Sleep(200 * time.Millisecond)
	out := t.output(id, "stdout")
	t.check(!strings.Contains(out, "should-not-run"), "the container's process never ran", r,
		"stdout: "+tail(out, 200))
}

// --- in-container cases ------------------------------------------------------

// inContainer runs the checker as the container's process over a spec with
// the checker's areas and edit's changes, and reports each of its lines.
func inContainer(areas []string, edit func(g *generate.Generator)) func(*T) {
	return func(t *T) {
		id := t.id("c")
		g := t.spec("/bin/oci_check")
		g.AddAnnotation(areasAnnotation, strings.Join(areas, ","))
		if edit != nil {
			edit(g)
		}
		b, err := t.bundle("bundle", g)
		if err != nil {
			t.notOK("make the bundle", reqCreate, err.Error())
			return
		}
		res := t.create(b, id)
		if !t.check(res.ok(), "create accepts the spec", reqEnvCreate, res.describe()) {
			return
		}
		res = t.op("start", id)
		if !t.check(res.ok(), "start succeeds", reqStartProc, res.describe()) {
			return
		}
		if st, err := t.waitStatus(id, rspec.StateStopped); err != nil {
			t.notOK("the checker runs and exits (status becomes stopped)", reqChecker, err.Error(), stateLine(st),
				"stdout: "+tail(t.output(id, "stdout"), 500))
			return
		}
		t.ingest(t.output(id, "stdout"), t.output(id, "stderr"))
	}
}

// ingest turns the checker's lines into TAP results.
func (t *T) ingest(stdout, stderr string) {
	type pending struct {
		status, line string
		diag         []string
		skip         bool
	}
	var cur *pending
	flush := func() {
		if cur == nil {
			return
		}
		switch {
		case cur.status == "not ok":
			t.fail = true
			t.h.tap.failed++
		case cur.skip:
			t.h.tap.skipped++
		default:
			t.h.tap.passed++
		}
		t.h.tap.emit(cur.status, t.name+": "+cur.line, cur.diag)
		cur = nil
	}
	results, summary := 0, false
	var other []string
	for _, l := range strings.Split(stdout, "\n") {
		switch {
		case strings.HasPrefix(l, "ok - "):
			flush()
			results++
			cur = &pending{status: "ok", line: strings.TrimPrefix(l, "ok - "), skip: strings.Contains(l, " # SKIP ")}
		case strings.HasPrefix(l, "not ok - "):
			flush()
			results++
			cur = &pending{status: "not ok", line: strings.TrimPrefix(l, "not ok - ")}
		case strings.HasPrefix(l, "# oci_check: "):
			flush()
			summary = true
		case strings.HasPrefix(l, "# "):
			if cur != nil {
				cur.diag = append(cur.diag, strings.TrimPrefix(l, "# "))
			}
		case strings.TrimSpace(l) != "":
			other = append(other, l)
		}
	}
	flush()
	t.check(results > 0 && summary, "the checker ran to its end and reported", reqChecker,
		fmt.Sprintf("%d results, summary line seen: %v", results, summary),
		"other stdout: "+tail(strings.Join(other, "\n"), 500), "stderr: "+tail(stderr, 500))
}

// --- the cases ---------------------------------------------------------------

type testCase struct {
	name, about string
	run         func(*T)
}

var (
	maskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func cases() []testCase {
	oom := 200
	memLimit := int64(64 << 20)
	return []testCase{
		{"lifecycle.state-unknown", "runtime.md#query-state: state of an unknown id", caseStateUnknown},
		{"lifecycle.create", "runtime.md#create, #state: create and the created state", caseCreate},
		{"lifecycle.create-duplicate-id", "runtime.md#create: an id in use", caseCreateDuplicate},
		{"lifecycle.start", "runtime.md#start: start, and start of a running container", caseStart},
		{"lifecycle.kill", "runtime.md#kill: kill TERM, then kill and start of a stopped container", caseKill},
		{"lifecycle.delete-running", "runtime.md#delete: delete of a running container", caseDeleteRunning},
		{"lifecycle.exit", "runtime.md#lifecycle, #delete: exit, then delete", caseExit},
		{"hooks", "config.md#posix-platform-hooks: prestart, createRuntime, poststart, poststop", caseHooks},
		{"hooks.poststart-timing", "config.md#poststart: poststart runs in start, not in create", casePoststartTiming},
		{"hooks.prestart-fails", "runtime.md#lifecycle: a failing prestart hook",
			func(t *T) { hookFails(t, "prestart", reqPrestartFail) }},
		{"hooks.createRuntime-fails", "runtime.md#lifecycle: a failing createRuntime hook",
			func(t *T) { hookFails(t, "createRuntime", reqCreateRuntimeFail) }},
		{"mounts.defaults", "config.md#mounts: generate's default mounts", inContainer([]string{"mounts"}, nil)},
		{"mounts.tmpfs", "config.md#mounts: a tmpfs at /mnt/t, nosuid,noexec,size=1m", inContainer([]string{"mounts"},
			func(g *generate.Generator) {
				g.AddMount(rspec.Mount{Destination: "/mnt/t", Type: "tmpfs", Source: "tmpfs",
					Options: []string{"nosuid", "noexec", "size=1m"}})
			})},
		{"linux.namespaces", "config-linux.md#namespaces: new pid, mount, ipc, uts namespaces", inContainer([]string{"namespaces"}, nil)},
		{"linux.devices", "config-linux.md#default-devices, runtime-linux.md#dev-symbolic-links", inContainer([]string{"devices"}, nil)},
		{"process.args", "config.md#process: args", inContainer([]string{"args"}, func(g *generate.Generator) {
			g.SetProcessArgs([]string{"/bin/oci_check", "an arg with spaces", "--not-an-option=1", `quote"d`})
		})},
		{"process.env", "config.md#process: env", inContainer([]string{"env"}, func(g *generate.Generator) {
			g.AddProcessEnv("FOO", "bar")
			g.AddProcessEnv("WITH_SPACE", "a b  c")
			g.AddProcessEnv("EMPTY", "")
		})},
		{"process.cwd", "config.md#process: cwd /tmp", inContainer([]string{"cwd"}, func(g *generate.Generator) {
			g.SetProcessCwd("/tmp")
		})},
		{"process.user", "config.md#user: uid 1000, gid 1000, additionalGids [5 6]", inContainer([]string{"user"}, func(g *generate.Generator) {
			g.SetProcessUID(1000)
			g.SetProcessGID(1000)
			g.AddProcessAdditionalGid(5)
			g.AddProcessAdditionalGid(6)
		})},
		{"process.rlimits", "config.md#posix-process: RLIMIT_NOFILE 1024/2048, RLIMIT_CORE 4096/8192", inContainer([]string{"rlimits"}, func(g *generate.Generator) {
			g.AddProcessRlimits("RLIMIT_NOFILE", 2048, 1024)
			g.AddProcessRlimits("RLIMIT_CORE", 8192, 4096)
			// Go raises its own soft RLIMIT_NOFILE at start: a shell
			// reports the one the runtime set before it execs the checker.
			g.SetProcessArgs([]string{"/bin/sh", "-c", "export OCI_CHECK_SH_NOFILE=$(ulimit -Sn); exec /bin/oci_check"})
		})},
		{"process.noNewPrivileges", "config.md#linux-process: noNewPrivileges true", inContainer([]string{"noNewPrivileges"}, func(g *generate.Generator) {
			g.SetProcessNoNewPrivileges(true)
		})},
		{"process.capabilities", "config.md#linux-process: capabilities CAP_CHOWN, CAP_KILL", inContainer([]string{"capabilities"}, func(g *generate.Generator) {
			c := []string{"CAP_CHOWN", "CAP_KILL"}
			g.Config.Process.Capabilities = &rspec.LinuxCapabilities{Bounding: c, Effective: c, Permitted: c, Inheritable: c}
		})},
		{"process.oomScoreAdj", "config.md#linux-process: oomScoreAdj 200", inContainer([]string{"oomScoreAdj"}, func(g *generate.Generator) {
			g.SetProcessOOMScoreAdj(oom)
		})},
		{"config.hostname", "config.md#hostname: conformance-host", inContainer([]string{"hostname"}, func(g *generate.Generator) {
			g.SetHostname("conformance-host")
		})},
		{"root.readonly", "config.md#root: readonly true", inContainer([]string{"root"}, func(g *generate.Generator) {
			g.SetRootReadonly(true)
		})},
		{"linux.sysctl", "config-linux.md#sysctl: kernel.shmmax (ipc namespace)", inContainer([]string{"sysctl"}, func(g *generate.Generator) {
			g.AddLinuxSysctl("kernel.shmmax", "65536000")
		})},
		{"linux.maskedPaths", "config-linux.md#masked-paths: runc's default list", inContainer([]string{"maskedPaths"}, func(g *generate.Generator) {
			for _, p := range maskedPaths {
				g.AddLinuxMaskedPaths(p)
			}
		})},
		{"linux.readonlyPaths", "config-linux.md#readonly-paths: runc's default list", inContainer([]string{"readonlyPaths"}, func(g *generate.Generator) {
			for _, p := range readonlyPaths {
				g.AddLinuxReadonlyPaths(p)
			}
		})},
		{"linux.resources", "config-linux.md#memory, #pids: memory limit 64 MiB, pids limit 64", inContainer([]string{"resources"}, func(g *generate.Generator) {
			g.SetLinuxResourcesMemoryLimit(memLimit)
			g.SetLinuxResourcesPidsLimit(64)
			// The checker reads the limits through the cgroup filesystem.
			g.AddMount(rspec.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
				Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
		})},
	}
}

// --- main --------------------------------------------------------------------

func nsInodes() (annotation, mnt string) {
	var parts []string
	for _, n := range []string{"pid", "mnt", "ipc", "uts", "net", "cgroup", "user"} {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/ns/"+n, &st); err == nil {
			parts = append(parts, n+":"+strconv.FormatUint(st.Ino, 10))
		}
	}
	mnt, _ = os.Readlink("/proc/self/ns/mnt")
	return strings.Join(parts, ","), mnt
}

func usage(msg string) {
	if msg != "" {
		fmt.Fprintf(os.Stderr, "oci_conformance: %s\n", msg)
	}
	fmt.Fprintf(os.Stderr, "usage: %s --runtime PATH [--root DIR] --checker PATH --work DIR [--run REGEX] [--skip REGEX] [--timeout 60s] [--list]\n", os.Args[0])
	flag.PrintDefaults()
	os.Exit(2)
}

func main() {
	h := &harness{}
	flag.StringVar(&h.runtime, "runtime", "", "the runtime binary (runc command line)")
	flag.StringVar(&h.root, "root", "", "the runtime's --root (state directory); left out when empty")
	flag.StringVar(&h.checker, "checker", "", "the static oci_check binary, copied into each rootfs")
	flag.StringVar(&h.work, "work", "", "directory for the bundles (each case removes its own)")
	runRe := flag.String("run", "", "run only the cases whose name matches this regexp")
	skipRe := flag.String("skip", "", "report the cases whose name matches this regexp as skipped, without running them")
	flag.DurationVar(&h.timeout, "timeout", 60*time.Second, "limit for each runtime command and each wait")
	list := flag.Bool("list", false, "list the cases and exit")
	flag.Usage = func() { usage("") }
	flag.Parse()
	if *list {
		for _, c := range cases() {
			fmt.Printf("%-30s %s\n", c.name, c.about)
		}
		return
	}
	if flag.NArg() > 0 {
		usage("unexpected arguments: " + strings.Join(flag.Args(), " "))
	}
	if h.runtime == "" || h.checker == "" || h.work == "" {
		usage("--runtime, --checker and --work are required")
	}
	if h.timeout <= 0 {
		usage("--timeout must be positive")
	}
	var run, skip *regexp.Regexp
	var err error
	if *runRe != "" {
		if run, err = regexp.Compile(*runRe); err != nil {
			usage("--run: " + err.Error())
		}
	}
	if *skipRe != "" {
		if skip, err = regexp.Compile(*skipRe); err != nil {
			usage("--skip: " + err.Error())
		}
	}
	for _, p := range []*string{&h.runtime, &h.checker, &h.work} {
		if *p, err = filepath.Abs(*p); err != nil {
			usage(err.Error())
		}
	}
	if h.root != "" {
		if h.root, err = filepath.Abs(h.root); err != nil {
			usage(err.Error())
		}
	}
	if fi, err := os.Stat(h.runtime); err != nil || fi.IsDir() {
		usage(fmt.Sprintf("--runtime %s: not a file (%v)", h.runtime, err))
	}
	if _, err := os.Stat(h.checker); err != nil {
		usage("--checker: " + err.Error())
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		usage("no /bin/busybox for the rootfs (apt package busybox-static): " + err.Error())
	}
	if err := os.MkdirAll(h.work, 0o755); err != nil {
		usage("--work: " + err.Error())
	}
	h.hostNS, h.mntNS = nsInodes()

	fmt.Println("TAP version 13")
	version := h.run(h.work, nil, nil, "--version")
	fmt.Printf("# runtime: %s (%s)\n", h.runtime, tail(strings.SplitN(version.stdout+version.stderr, "\n", 2)[0], 120))
	fmt.Printf("# runtime-spec %s (specs-go), checks from runtime-tools' specerror; timeout %v per command\n", rspec.Version, h.timeout)
	start := time.Now()
	caseFailures := []string{}
	ran := 0
	for i, c := range cases() {
		if run != nil && !run.MatchString(c.name) {
			continue
		}
		if skip != nil && skip.MatchString(c.name) {
			h.tap.skipped++
			h.tap.emit("ok", fmt.Sprintf("%s: %s # SKIP matches --skip %s", c.name, c.about, *skipRe), nil)
			continue
		}
		ran++
		fmt.Printf("# %s: %s\n", c.name, c.about)
		t := &T{h: h, name: c.name, dir: filepath.Join(h.work, fmt.Sprintf("%02d-%s", i, c.name))}
		os.RemoveAll(t.dir)
		if err := os.MkdirAll(t.dir, 0o755); err != nil {
			t.notOK("make the case's directory", reqCreate, err.Error())
		} else {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.notOK("the case ran without a harness error", reqChecker, fmt.Sprint(p))
					}
				}()
				c.run(t)
			}()
		}
		t.cleanup()
		if t.fail {
			caseFailures = append(caseFailures, c.name)
		}
	}
	fmt.Printf("1..%d\n", h.tap.n)
	sort.Strings(caseFailures)
	if len(caseFailures) > 0 {
		fmt.Printf("# cases with failures: %s\n", strings.Join(caseFailures, " "))
	}
	fmt.Printf("# %d cases run in %.1f s\n", ran, time.Since(start).Seconds())
	fmt.Printf("oci-conformance: %d passed, %d failed, %d skipped of %d\n", h.tap.passed, h.tap.failed, h.tap.skipped, h.tap.n)
	if h.tap.failed > 0 {
		os.Exit(1)
	}
}
