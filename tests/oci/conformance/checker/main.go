// oci_check runs inside a container, as the container's process, and checks
// what it can see from there against the container's config.json:
//
//	/bin/oci_check [ARG...]
//
// It reads the spec from /config.json (the harness copies the bundle's
// config.json into the rootfs; $OCI_CHECK_CONFIG names another file, for
// trying the checker by hand), runs the checks of the areas that the
// annotation org.skiff.oci-check.areas lists (comma-separated; all areas
// when it is absent) and prints one line per check:
//
//	ok - AREA: what [REQUIREMENT]
//	not ok - AREA: what: expected X, got Y [REQUIREMENT]
//	# the requirement's text (after a "not ok" only)
//	ok - AREA: what [REQUIREMENT] # SKIP why
//
// then "# oci_check: P ok, F not ok, S skipped" and exits 0 iff no check
// failed (1 otherwise). Its arguments are not options: they are what
// process.args has, and the "args" area checks them.
//
// REQUIREMENT names the part of the runtime-spec that the check is about:
// the section that defines the property, and the runtime-tools specerror
// code (its RFC 2119 level and reference) where there is one.
//
// A static program with Debian's Go packages, no modules:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode CGO_ENABLED=0 go build -o oci_check main.go
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rfc2119 "github.com/opencontainers/runtime-tools/error"
	"github.com/opencontainers/runtime-tools/specerror"
	"github.com/syndtr/gocapability/capability"
	"golang.org/x/sys/unix"
	ocireq "skiffoci/req"
)

const (
	areasAnnotation  = ocireq.AreasAnnotation // the areas to check (all when absent)
	hostNSAnnotation = ocireq.HostNSAnnotation
	// NofileEnv: the soft RLIMIT_NOFILE as a shell saw it before it
	// exec'ed the checker (see checkRlimits).
	nofileEnv = "OCI_CHECK_SH_NOFILE"
)

// The requirements' type and how a line cites one: shared with the
// other program of the suite (gopath/src/skiffoci/req).
type req = ocireq.Req

var (
	coded = ocireq.Coded
	plain = ocireq.Plain
)

// Requirements the checks cite.
var (
	reqArgs = coded("config.md#process", specerror.StartProcImplement, "StartProcImplement",
		"`start` operation MUST run the user-specified program as specified by `process` (args).")
	reqEnv = coded("config.md#process", specerror.ProcImplement, "ProcImplement",
		"The runtime MUST run the user-specified program, as specified by `process` (env).")
	reqCwd = coded("config.md#process", specerror.ProcImplement, "ProcImplement",
		"The runtime MUST run the user-specified program, as specified by `process` (cwd: the working directory set for the executable).")
	reqUser = coded("config.md#user", specerror.ProcImplement, "ProcImplement",
		"The runtime MUST run the user-specified program, as specified by `process` (user: uid, gid, additionalGids, umask).")
	reqHostname = coded("config.md#hostname", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"hostname specifies the container's hostname as seen by processes running inside the container; all properties except process MUST be applied.")
	reqRootRO = coded("config.md#root", specerror.RootReadonlyImplement, "RootReadonlyImplement",
		"`readonly` (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container, defaults to false.")
	reqMounts = coded("config.md#mounts", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"Each mount MUST be mounted at its destination with its type and options (all properties except process MUST be applied).")
	reqMountsOrder = coded("config.md#mounts", specerror.MountsInOrder, "MountsInOrder",
		"The runtime MUST mount entries in the listed order.")
	reqNSNew = coded("config-linux.md#namespaces", specerror.NSNewNSWithoutPath, "NSNewNSWithoutPath",
		"If `path` is not specified, the runtime MUST create a new container namespace of type `type`.")
	reqDevices = coded("config-linux.md#default-devices", specerror.DefaultDevices, "DefaultDevices",
		"In addition to any devices configured with this setting, the runtime MUST also supply default devices.")
	reqSpecDevices = coded("config-linux.md#devices", specerror.DevicesAvailable, "DevicesAvailable",
		"devices (array of objects, OPTIONAL) lists devices that MUST be available in the container.")
	reqDefaultFS = coded("config-linux.md#default-filesystems", specerror.DefaultFilesystems, "DefaultFilesystems",
		"The following filesystems SHOULD be made available in each container's filesystem: /proc, /sys, /dev/pts, /dev/shm.")
	reqSymlinks = coded("runtime-linux.md#dev-symbolic-links", specerror.DefaultRuntimeLinuxSymlinks, "DefaultRuntimeLinuxSymlinks",
		"While creating the container, runtimes MUST create default symlinks (/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr) if the source file exists after processing `mounts`.")
	reqRlimitSoft = coded("config.md#posix-process", specerror.PosixProcRlimitsSoftMatchCur, "PosixProcRlimitsSoftMatchCur",
		"`rlim.rlim_cur` MUST match the configured value.")
	reqRlimitHard = coded("config.md#posix-process", specerror.PosixProcRlimitsHardMatchMax, "PosixProcRlimitsHardMatchMax",
		"`rlim.rlim_max` MUST match the configured value.")
	reqNNP = coded("config.md#linux-process", specerror.ProcImplement, "ProcImplement",
		"noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the process from gaining additional privileges.")
	reqCaps = coded("config.md#linux-process", specerror.ProcImplement, "ProcImplement",
		"capabilities (object, OPTIONAL) is an object containing arrays that specifies the sets of capabilities for the process.")
	reqOOM = coded("config.md#linux-process", specerror.LinuxProcOomScoreAdjSet, "LinuxProcOomScoreAdjSet",
		"If `oomScoreAdj` is set, the runtime MUST set `oom_score_adj` to the given value.")
	reqSysctl = coded("config-linux.md#sysctl", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the container; all properties except process MUST be applied.")
	reqMasked = coded("config-linux.md#masked-paths", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"maskedPaths will mask over the provided paths inside the container so that they cannot be read.")
	reqReadonly = coded("config-linux.md#readonly-paths", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"readonlyPaths will set the provided paths as readonly inside the container.")
	reqMemory = coded("config-linux.md#memory", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"memory.limit (int64, OPTIONAL) sets limit of memory usage in bytes; all properties except process MUST be applied.")
	reqPids = coded("config-linux.md#pids", specerror.PropsApplyExceptProcOnCreate, "PropsApplyExceptProcOnCreate",
		"pids.limit (int64, REQUIRED) specifies the maximum number of tasks in the cgroup; all properties except process MUST be applied.")
	reqConfig = plain("bundle.md", rfc2119.Must, "the checker reads the container's config.json (copied into the rootfs as /config.json)")
)

type checker struct {
	spec              rspec.Spec
	ok, failed, skips int
}

func (c *checker) pass(area, what string, r req) {
	c.ok++
	fmt.Printf("ok - %s: %s %s\n", area, what, r.Tag())
}

func (c *checker) fail(area, what, detail string, r req) {
	c.failed++
	fmt.Printf("not ok - %s: %s: %s %s\n", area, what, oneLine(detail), r.Tag())
	fmt.Printf("# %s\n", r.Text)
}

func (c *checker) skip(area, what, why string, r req) {
	c.skips++
	fmt.Printf("ok - %s: %s %s # SKIP %s\n", area, what, r.Tag(), oneLine(why))
}

// result is pass when detail is "", fail otherwise.
func (c *checker) result(area, what, detail string, r req) {
	if detail == "" {
		c.pass(area, what, r)
	} else {
		c.fail(area, what, detail, r)
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func expectGot(expected, got interface{}) string {
	return fmt.Sprintf("expected %v, got %v", expected, got)
}

func main() {
	path := os.Getenv("OCI_CHECK_CONFIG")
	if path == "" {
		path = "/config.json"
	}
	c := &checker{}
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &c.spec)
	}
	if err != nil {
		c.fail("config", "read "+path, err.Error(), reqConfig)
		c.finish()
	}
	if c.spec.Process == nil {
		c.fail("config", path+" has a process", "expected process, got none", reqConfig)
		c.finish()
	}
	areas := []struct {
		name  string
		check func(*checker)
	}{
		{"args", (*checker).checkArgs},
		{"env", (*checker).checkEnv},
		{"cwd", (*checker).checkCwd},
		{"user", (*checker).checkUser},
		{"hostname", (*checker).checkHostname},
		{"root", (*checker).checkRoot},
		{"mounts", (*checker).checkMounts},
		{"namespaces", (*checker).checkNamespaces},
		{"devices", (*checker).checkDevices},
		{"rlimits", (*checker).checkRlimits},
		{"noNewPrivileges", (*checker).checkNoNewPrivileges},
		{"capabilities", (*checker).checkCapabilities},
		{"oomScoreAdj", (*checker).checkOOMScoreAdj},
		{"sysctl", (*checker).checkSysctl},
		{"maskedPaths", (*checker).checkMaskedPaths},
		{"readonlyPaths", (*checker).checkReadonlyPaths},
		{"resources", (*checker).checkResources},
	}
	want := map[string]bool{}
	all := true
	if v, ok := c.spec.Annotations[areasAnnotation]; ok {
		all = false
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				want[a] = true
			}
		}
	}
	known := map[string]bool{}
	for _, a := range areas {
		known[a.name] = true
		if all || want[a.name] {
			a.check(c)
		}
	}
	for a := range want {
		if !known[a] {
			c.fail("config", "annotation "+areasAnnotation+" names known areas", "unknown area "+strconv.Quote(a), reqConfig)
		}
	}
	c.finish()
}

func (c *checker) finish() {
	fmt.Printf("# oci_check: %d ok, %d not ok, %d skipped\n", c.ok, c.failed, c.skips)
	if c.failed > 0 {
		os.Exit(1)
	}
	os.Exit(0)
}

// --- process ---------------------------------------------------------------

func (c *checker) checkArgs() {
	want, got := c.spec.Process.Args, os.Args
	detail := ""
	if strings.Join(want, "\x00") != strings.Join(got, "\x00") || len(want) != len(got) {
		detail = expectGot(fmt.Sprintf("%q", want), fmt.Sprintf("%q", got))
	}
	c.result("args", fmt.Sprintf("argv is process.args %q", want), detail, reqArgs)
}

func (c *checker) checkEnv() {
	have := map[string]bool{}
	for _, e := range os.Environ() {
		have[e] = true
	}
	if len(c.spec.Process.Env) == 0 {
		c.skip("env", "process.env", "process.env is empty", reqEnv)
	}
	for _, e := range c.spec.Process.Env {
		detail := ""
		if !have[e] {
			name := e
			if i := strings.IndexByte(e, '='); i >= 0 {
				name = e[:i]
			}
			v, ok := os.LookupEnv(name)
			if ok {
				detail = expectGot(strconv.Quote(e), strconv.Quote(name+"="+v))
			} else {
				detail = expectGot(strconv.Quote(e), name+" unset")
			}
		}
		c.result("env", fmt.Sprintf("%q is in the environment", e), detail, reqEnv)
	}
}

func (c *checker) checkCwd() {
	want := filepath.Clean(c.spec.Process.Cwd)
	got, err := os.Getwd()
	detail := ""
	if err != nil {
		detail = expectGot(want, err)
	} else if got != want {
		detail = expectGot(want, got)
	}
	c.result("cwd", "the working directory is "+want, detail, reqCwd)
}

func (c *checker) checkUser() {
	u := c.spec.Process.User
	uid, euid := os.Getuid(), os.Geteuid()
	detail := ""
	if uid != int(u.UID) || euid != int(u.UID) {
		detail = expectGot(fmt.Sprintf("uid=euid=%d", u.UID), fmt.Sprintf("uid %d euid %d", uid, euid))
	}
	c.result("user", fmt.Sprintf("uid is %d", u.UID), detail, reqUser)

	gid, egid := os.Getgid(), os.Getegid()
	detail = ""
	if gid != int(u.GID) || egid != int(u.GID) {
		detail = expectGot(fmt.Sprintf("gid=egid=%d", u.GID), fmt.Sprintf("gid %d egid %d", gid, egid))
	}
	c.result("user", fmt.Sprintf("gid is %d", u.GID), detail, reqUser)

	// Every additional gid present; nothing else but the primary gid.
	groups, err := os.Getgroups()
	detail = ""
	if err != nil {
		detail = "getgroups: " + err.Error()
	} else {
		have := map[int]bool{}
		for _, g := range groups {
			have[g] = true
		}
		wantSet := map[int]bool{int(u.GID): true}
		var missing, extra []int
		for _, g := range u.AdditionalGids {
			wantSet[int(g)] = true
			if !have[int(g)] {
				missing = append(missing, int(g))
			}
		}
		for _, g := range groups {
			if !wantSet[g] {
				extra = append(extra, g)
			}
		}
		sort.Ints(groups)
		if len(missing) > 0 || len(extra) > 0 {
			detail = expectGot(fmt.Sprintf("groups %v (and maybe %d)", u.AdditionalGids, u.GID),
				fmt.Sprintf("%v (missing %v, extra %v)", groups, missing, extra))
		}
	}
	c.result("user", fmt.Sprintf("supplementary groups are additionalGids %v", u.AdditionalGids), detail, reqUser)

	if u.Umask != nil {
		got := unix.Umask(0)
		unix.Umask(got)
		detail = ""
		if uint32(got) != *u.Umask {
			detail = expectGot(fmt.Sprintf("%04o", *u.Umask), fmt.Sprintf("%04o", got))
		}
		c.result("user", fmt.Sprintf("umask is %04o", *u.Umask), detail, reqUser)
	}
}

func (c *checker) checkHostname() {
	if c.spec.Hostname == "" {
		c.skip("hostname", "hostname", "config.json sets no hostname", reqHostname)
		return
	}
	got, err := os.Hostname()
	detail := ""
	if err != nil {
		detail = expectGot(strconv.Quote(c.spec.Hostname), err)
	} else if got != c.spec.Hostname {
		detail = expectGot(strconv.Quote(c.spec.Hostname), strconv.Quote(got))
	}
	c.result("hostname", fmt.Sprintf("hostname is %q", c.spec.Hostname), detail, reqHostname)
}

// --- root and mounts -------------------------------------------------------

func (c *checker) checkRoot() {
	readonly := c.spec.Root != nil && c.spec.Root.Readonly
	probe := fmt.Sprintf("/.oci_check_probe.%d", os.Getpid())
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		f.Close()
		os.Remove(probe)
	}
	if readonly {
		detail := ""
		if err == nil {
			detail = expectGot("EROFS", "the write succeeded")
		} else if !errors.Is(err, unix.EROFS) {
			detail = expectGot("EROFS", err)
		}
		c.result("root", "root.readonly: creating a file in / fails with EROFS", detail, reqRootRO)
		return
	}
	detail := ""
	if errors.Is(err, unix.EROFS) {
		detail = expectGot("a writable root (root.readonly is false)", err)
	}
	c.result("root", "root.readonly false: / is not read-only", detail, reqRootRO)
}

type mountEntry struct {
	index      int
	mountPoint string
	options    map[string]bool // per-mount options
	fsType     string
	source     string
	superOpts  map[string]bool
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func optionSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, o := range strings.Split(s, ",") {
		m[o] = true
	}
	return m
}

func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		out = append(out, mountEntry{
			index:      len(out),
			mountPoint: unescapeMountinfo(fields[4]),
			options:    optionSet(fields[5]),
			fsType:     fields[sep+1],
			source:     unescapeMountinfo(fields[sep+2]),
			superOpts:  optionSet(fields[sep+3]),
		})
	}
	return out, sc.Err()
}

// topMount is the last (uppermost) mount at path.
func topMount(mounts []mountEntry, path string) *mountEntry {
	path = filepath.Clean(path)
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].mountPoint == path {
			return &mounts[i]
		}
	}
	return nil
}

// Types whose name mountinfo shows as it is in config.json.
var checkedTypes = map[string]bool{"tmpfs": true, "proc": true, "sysfs": true, "mqueue": true, "devpts": true, "cgroup2": true}

// tmpfsSize parses a tmpfs size= value (bytes, or k/m/g); ok false for
// forms it does not handle (a percentage).
func tmpfsSize(v string) (uint64, bool) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		mult = 1 << 10
	case strings.HasSuffix(v, "m"), strings.HasSuffix(v, "M"):
		mult = 1 << 20
	case strings.HasSuffix(v, "g"), strings.HasSuffix(v, "G"):
		mult = 1 << 30
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n * mult, true
}

func (c *checker) checkMounts() {
	if len(c.spec.Mounts) == 0 {
		c.skip("mounts", "mounts", "config.json has no mounts", reqMounts)
		return
	}
	mounts, err := readMountinfo()
	if err != nil {
		c.fail("mounts", "read /proc/self/mountinfo", err.Error(), reqMounts)
		return
	}
	lastIndex, lastDest := -1, ""
	orderDetail := ""
	for _, m := range c.spec.Mounts {
		what := fmt.Sprintf("%s is mounted (type %s, options %s)", m.Destination, m.Type, strings.Join(m.Options, ","))
		e := topMount(mounts, m.Destination)
		if e == nil {
			c.fail("mounts", what, expectGot("a mount at "+m.Destination, "none in /proc/self/mountinfo"), reqMounts)
			continue
		}
		var problems []string
		if checkedTypes[m.Type] && e.fsType != m.Type {
			problems = append(problems, expectGot("type "+m.Type, e.fsType))
		}
		for _, o := range m.Options {
			switch {
			case o == "ro":
				if !e.options["ro"] && !e.superOpts["ro"] {
					problems = append(problems, expectGot("ro", "a writable mount"))
				}
			case o == "nosuid" || o == "noexec" || o == "nodev":
				if !e.options[o] {
					problems = append(problems, expectGot(o, "mount options "+joinSet(e.options)))
				}
			case strings.HasPrefix(o, "size=") && m.Type == "tmpfs":
				want, ok := tmpfsSize(strings.TrimPrefix(o, "size="))
				if !ok {
					break
				}
				var st unix.Statfs_t
				if err := unix.Statfs(m.Destination, &st); err != nil {
					problems = append(problems, "statfs: "+err.Error())
					break
				}
				page := uint64(os.Getpagesize())
				want = (want + page - 1) / page * page
				if got := st.Blocks * uint64(st.Bsize); got != want {
					problems = append(problems, expectGot(fmt.Sprintf("%s (%d bytes)", o, want), fmt.Sprintf("%d bytes", got)))
				}
			}
		}
		c.result("mounts", what, strings.Join(problems, "; "), reqMounts)
		if e.index < lastIndex && orderDetail == "" {
			orderDetail = fmt.Sprintf("%s (mountinfo line %d) is mounted before %s (line %d)", m.Destination, e.index+1, lastDest, lastIndex+1)
		}
		if e.index > lastIndex {
			lastIndex, lastDest = e.index, m.Destination
		}
	}
	c.result("mounts", "the mounts appear in /proc/self/mountinfo in the listed order", orderDetail, reqMountsOrder)
}

func joinSet(m map[string]bool) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// --- namespaces ------------------------------------------------------------

var nsFiles = map[rspec.LinuxNamespaceType]string{
	rspec.PIDNamespace: "pid", rspec.NetworkNamespace: "net", rspec.MountNamespace: "mnt",
	rspec.IPCNamespace: "ipc", rspec.UTSNamespace: "uts", rspec.UserNamespace: "user",
	rspec.CgroupNamespace: "cgroup",
}

func (c *checker) checkNamespaces() {
	if c.spec.Linux == nil || len(c.spec.Linux.Namespaces) == 0 {
		c.skip("namespaces", "linux.namespaces", "config.json lists no namespaces", reqNSNew)
		return
	}
	host := map[string]uint64{}
	for _, kv := range strings.Split(c.spec.Annotations[hostNSAnnotation], ",") {
		if i := strings.IndexByte(kv, ':'); i > 0 {
			if n, err := strconv.ParseUint(kv[i+1:], 10, 64); err == nil {
				host[kv[:i]] = n
			}
		}
	}
	for _, ns := range c.spec.Linux.Namespaces {
		if ns.Path != "" {
			continue
		}
		if ns.Type == rspec.PIDNamespace {
			detail := ""
			if pid := os.Getpid(); pid != 1 {
				detail = expectGot("pid 1", fmt.Sprintf("pid %d", pid))
			}
			c.result("namespaces", "new pid namespace: the process is pid 1", detail, reqNSNew)
		}
		file := nsFiles[ns.Type]
		if file == "" {
			continue
		}
		what := fmt.Sprintf("new %s namespace: /proc/self/ns/%s is not the runtime's", ns.Type, file)
		hostIno, ok := host[file]
		if !ok {
			c.skip("namespaces", what, "no "+hostNSAnnotation+" annotation for it", reqNSNew)
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+file, &st); err != nil {
			c.fail("namespaces", what, err.Error(), reqNSNew)
			continue
		}
		detail := ""
		if st.Ino == hostIno {
			detail = expectGot("an inode other than the runtime's "+strconv.FormatUint(hostIno, 10), st.Ino)
		}
		c.result("namespaces", what, detail, reqNSNew)
	}
}

// --- devices ---------------------------------------------------------------

func devNumbers(path string) (typ string, major, minor uint32, st unix.Stat_t, err error) {
	if err = unix.Stat(path, &st); err != nil {
		return "", 0, 0, st, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFIFO:
		typ = "p"
	case unix.S_IFDIR:
		typ = "directory"
	case unix.S_IFREG:
		typ = "regular file"
	default:
		typ = fmt.Sprintf("mode %o", st.Mode&unix.S_IFMT)
	}
	return typ, unix.Major(st.Rdev), unix.Minor(st.Rdev), st, nil
}

func (c *checker) checkDevices() {
	defaults := []struct {
		path         string
		major, minor uint32
	}{
		{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
		{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
	}
	for _, d := range defaults {
		what := fmt.Sprintf("%s is a char device %d:%d", d.path, d.major, d.minor)
		typ, ma, mi, _, err := devNumbers(d.path)
		detail := ""
		if err != nil {
			detail = expectGot(fmt.Sprintf("c %d:%d", d.major, d.minor), err)
		} else if typ != "c" || ma != d.major || mi != d.minor {
			detail = expectGot(fmt.Sprintf("c %d:%d", d.major, d.minor), fmt.Sprintf("%s %d:%d", typ, ma, mi))
		}
		c.result("devices", what, detail, reqDevices)
	}
	// /dev/ptmx: a link to pts/ptmx or the char device 5:2.
	detail := ""
	if typ, ma, mi, _, err := devNumbers("/dev/ptmx"); err != nil {
		detail = expectGot("/dev/ptmx (c 5:2 or a link to pts/ptmx)", err)
	} else if typ != "c" || ma != 5 || mi != 2 {
		detail = expectGot("c 5:2", fmt.Sprintf("%s %d:%d", typ, ma, mi))
	}
	c.result("devices", "/dev/ptmx is (or leads to) a char device 5:2", detail, reqDevices)

	// The spec's own devices.
	if c.spec.Linux != nil {
		for _, d := range c.spec.Linux.Devices {
			what := fmt.Sprintf("linux.devices %s is %s %d:%d", d.Path, d.Type, d.Major, d.Minor)
			typ, ma, mi, st, err := devNumbers(d.Path)
			wantType := d.Type
			if wantType == "u" {
				wantType = "c"
			}
			var problems []string
			if err != nil {
				problems = append(problems, expectGot(d.Path, err))
			} else {
				if typ != wantType || (d.Type != "p" && (int64(ma) != d.Major || int64(mi) != d.Minor)) {
					problems = append(problems, expectGot(fmt.Sprintf("%s %d:%d", d.Type, d.Major, d.Minor), fmt.Sprintf("%s %d:%d", typ, ma, mi)))
				}
				if d.FileMode != nil && os.FileMode(st.Mode&0o777) != *d.FileMode&0o777 {
					problems = append(problems, expectGot(fmt.Sprintf("mode %04o", *d.FileMode&0o777), fmt.Sprintf("%04o", st.Mode&0o777)))
				}
				if d.UID != nil && st.Uid != *d.UID {
					problems = append(problems, expectGot(fmt.Sprintf("uid %d", *d.UID), st.Uid))
				}
				if d.GID != nil && st.Gid != *d.GID {
					problems = append(problems, expectGot(fmt.Sprintf("gid %d", *d.GID), st.Gid))
				}
			}
			c.result("devices", what, strings.Join(problems, "; "), reqSpecDevices)
		}
	}

	// /dev/pts and /dev/shm: the default filesystems (SHOULD).
	mounts, _ := readMountinfo()
	for _, fs := range []struct{ path, typ string }{{"/dev/pts", "devpts"}, {"/dev/shm", "tmpfs"}} {
		detail := ""
		if fi, err := os.Stat(fs.path); err != nil {
			detail = expectGot("a directory", err)
		} else if !fi.IsDir() {
			detail = expectGot("a directory", fi.Mode().String())
		} else if e := topMount(mounts, fs.path); e == nil {
			detail = expectGot("a "+fs.typ+" mount", "no mount at "+fs.path)
		} else if e.fsType != fs.typ {
			detail = expectGot("a "+fs.typ+" mount", e.fsType)
		}
		c.result("devices", fmt.Sprintf("%s is a %s mount", fs.path, fs.typ), detail, reqDefaultFS)
	}

	links := []struct{ path, target string }{
		{"/dev/fd", "/proc/self/fd"}, {"/dev/stdin", "/proc/self/fd/0"},
		{"/dev/stdout", "/proc/self/fd/1"}, {"/dev/stderr", "/proc/self/fd/2"},
	}
	for _, l := range links {
		what := fmt.Sprintf("%s is a symlink to %s", l.path, l.target)
		got, err := os.Readlink(l.path)
		detail := ""
		if err != nil {
			detail = expectGot(l.target, err)
		} else if got != l.target {
			detail = expectGot(l.target, got)
		}
		c.result("devices", what, detail, reqSymlinks)
	}
}

// --- rlimits, privileges, capabilities, oom --------------------------------

var rlimitNumbers = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

func (c *checker) checkRlimits() {
	if len(c.spec.Process.Rlimits) == 0 {
		c.skip("rlimits", "process.rlimits", "config.json sets no rlimits", reqRlimitSoft)
		return
	}
	for _, rl := range c.spec.Process.Rlimits {
		n, ok := rlimitNumbers[rl.Type]
		if !ok {
			c.skip("rlimits", rl.Type, "a type this checker does not know", reqRlimitSoft)
			continue
		}
		var got unix.Rlimit
		if err := unix.Getrlimit(n, &got); err != nil {
			c.fail("rlimits", "getrlimit "+rl.Type, err.Error(), reqRlimitSoft)
			continue
		}
		detail := ""
		if got.Max != rl.Hard {
			detail = expectGot(rl.Hard, got.Max)
		}
		c.result("rlimits", fmt.Sprintf("%s hard limit is %d", rl.Type, rl.Hard), detail, reqRlimitHard)

		what := fmt.Sprintf("%s soft limit is %d", rl.Type, rl.Soft)
		soft := got.Cur
		if n == unix.RLIMIT_NOFILE {
			// Go (1.19 on) raises its own soft RLIMIT_NOFILE to the hard
			// limit before main runs: what the runtime set is gone by now.
			// A shell run as the container's process can report it before
			// it execs this checker.
			v, ok := os.LookupEnv(nofileEnv)
			if !ok {
				if rl.Soft == rl.Hard {
					// Raising it to the hard limit changed nothing.
					detail = ""
					if got.Cur != rl.Soft {
						detail = expectGot(rl.Soft, got.Cur)
					}
					c.result("rlimits", what, detail, reqRlimitSoft)
				} else {
					c.skip("rlimits", what, "Go raised its soft RLIMIT_NOFILE at start; no "+nofileEnv+" from a shell", reqRlimitSoft)
				}
				continue
			}
			if v == "unlimited" {
				soft = unix.RLIM_INFINITY
			} else if s, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				soft = s
			} else {
				c.fail("rlimits", what, fmt.Sprintf("%s=%q is not a number", nofileEnv, v), reqRlimitSoft)
				continue
			}
			what += " (as the shell saw it before exec'ing the checker)"
		}
		detail = ""
		if soft != rl.Soft {
			detail = expectGot(rl.Soft, soft)
		}
		c.result("rlimits", what, detail, reqRlimitSoft)
	}
}

// procStatus reads /proc/self/status into a map.
func procStatus() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, ':'); i > 0 {
			m[line[:i]] = strings.TrimSpace(line[i+1:])
		}
	}
	return m, nil
}

func (c *checker) checkNoNewPrivileges() {
	if !c.spec.Process.NoNewPrivileges {
		c.skip("noNewPrivileges", "process.noNewPrivileges", "not set in config.json", reqNNP)
		return
	}
	st, err := procStatus()
	detail := ""
	if err != nil {
		detail = err.Error()
	} else if st["NoNewPrivs"] != "1" {
		detail = expectGot("NoNewPrivs 1 in /proc/self/status", fmt.Sprintf("%q", st["NoNewPrivs"]))
	}
	c.result("noNewPrivileges", "noNewPrivileges true: NoNewPrivs is 1", detail, reqNNP)
}

// capNames maps "CAP_CHOWN" to its number, for the capabilities the
// gocapability package knows.
func capNames() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.List() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}

func capList(mask uint64, byNum map[capability.Cap]string) []string {
	var out []string
	for i := 0; i < 64; i++ {
		if mask&(1<<uint(i)) != 0 {
			if n, ok := byNum[capability.Cap(i)]; ok {
				out = append(out, n)
			} else {
				out = append(out, fmt.Sprintf("cap%d", i))
			}
		}
	}
	return out
}

func (c *checker) checkCapabilities() {
	caps := c.spec.Process.Capabilities
	if caps == nil {
		c.skip("capabilities", "process.capabilities", "not set in config.json", reqCaps)
		return
	}
	st, err := procStatus()
	if err != nil {
		c.fail("capabilities", "read /proc/self/status", err.Error(), reqCaps)
		return
	}
	lastCap := capability.CAP_LAST_CAP
	if data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			lastCap = capability.Cap(n)
		}
	}
	names := capNames()
	byNum := map[capability.Cap]string{}
	for n, v := range names {
		byNum[v] = n
	}
	sets := []struct {
		field, status string
		list          []string
	}{
		{"bounding", "CapBnd", caps.Bounding},
		{"effective", "CapEff", caps.Effective},
		{"permitted", "CapPrm", caps.Permitted},
		{"inheritable", "CapInh", caps.Inheritable},
		{"ambient", "CapAmb", caps.Ambient},
	}
	for _, s := range sets {
		if s.list == nil && s.field != "ambient" {
			continue
		}
		what := fmt.Sprintf("%s is capabilities.%s %v", s.status, s.field, s.list)
		var want uint64
		var beyond []string
		for _, n := range s.list {
			v, ok := names[n]
			if !ok {
				c.fail("capabilities", what, fmt.Sprintf("%s is not a capability this checker knows", n), reqCaps)
				continue
			}
			if v > lastCap {
				beyond = append(beyond, n) // the kernel does not have it
				continue
			}
			want |= 1 << uint(v)
		}
		got, err := strconv.ParseUint(st[s.status], 16, 64)
		if err != nil {
			c.fail("capabilities", what, fmt.Sprintf("%s in /proc/self/status: %q", s.status, st[s.status]), reqCaps)
			continue
		}
		detail := ""
		if got != want {
			detail = fmt.Sprintf("expected %016x, got %016x (missing %v, extra %v)", want, got,
				capList(want&^got, byNum), capList(got&^want, byNum))
		}
		if len(beyond) > 0 {
			what += fmt.Sprintf(" (%v beyond this kernel's last capability %d)", beyond, lastCap)
		}
		c.result("capabilities", what, detail, reqCaps)
	}
}

func (c *checker) checkOOMScoreAdj() {
	if c.spec.Process.OOMScoreAdj == nil {
		c.skip("oomScoreAdj", "process.oomScoreAdj", "not set in config.json", reqOOM)
		return
	}
	want := *c.spec.Process.OOMScoreAdj
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	detail := ""
	if err != nil {
		detail = err.Error()
	} else if got := strings.TrimSpace(string(data)); got != strconv.Itoa(want) {
		detail = expectGot(want, got)
	}
	c.result("oomScoreAdj", fmt.Sprintf("/proc/self/oom_score_adj is %d", want), detail, reqOOM)
}

// --- linux -----------------------------------------------------------------

func (c *checker) checkSysctl() {
	if c.spec.Linux == nil || len(c.spec.Linux.Sysctl) == 0 {
		c.skip("sysctl", "linux.sysctl", "not set in config.json", reqSysctl)
		return
	}
	keys := make([]string, 0, len(c.spec.Linux.Sysctl))
	for k := range c.spec.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := c.spec.Linux.Sysctl[k]
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		data, err := os.ReadFile(path)
		detail := ""
		if err != nil {
			detail = err.Error()
		} else if got := strings.Join(strings.Fields(string(data)), " "); got != strings.Join(strings.Fields(want), " ") {
			detail = expectGot(strconv.Quote(want), strconv.Quote(got))
		}
		c.result("sysctl", fmt.Sprintf("%s (%s) is %q", k, path, want), detail, reqSysctl)
	}
}

func (c *checker) checkMaskedPaths() {
	if c.spec.Linux == nil || len(c.spec.Linux.MaskedPaths) == 0 {
		c.skip("maskedPaths", "linux.maskedPaths", "not set in config.json", reqMasked)
		return
	}
	for _, p := range c.spec.Linux.MaskedPaths {
		what := p + " cannot be read"
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			c.pass("maskedPaths", what+" (absent)", reqMasked)
			continue
		}
		if err != nil {
			c.pass("maskedPaths", fmt.Sprintf("%s (%v)", what, err), reqMasked)
			continue
		}
		if fi.IsDir() {
			entries, err := os.ReadDir(p)
			detail := ""
			if err == nil && len(entries) > 0 {
				var names []string
				for i, e := range entries {
					if i == 5 {
						names = append(names, "...")
						break
					}
					names = append(names, e.Name())
				}
				detail = expectGot("an empty directory", fmt.Sprintf("%d entries: %s", len(entries), strings.Join(names, " ")))
			}
			c.result("maskedPaths", what+" (a directory: empty)", detail, reqMasked)
			continue
		}
		// A file: reading it gives nothing (e.g. /dev/null bound over it),
		// or fails.
		f, err := os.Open(p)
		if err != nil {
			c.pass("maskedPaths", fmt.Sprintf("%s (open: %v)", what, err), reqMasked)
			continue
		}
		buf := make([]byte, 64)
		n, rerr := f.Read(buf)
		f.Close()
		detail := ""
		if n > 0 {
			detail = expectGot("nothing to read", fmt.Sprintf("%d bytes (%q...)", n, buf[:minInt(n, 16)]))
		}
		how := "reads nothing"
		if rerr != nil && n == 0 && !errors.Is(rerr, io.EOF) {
			how = "read fails: " + rerr.Error()
		}
		c.result("maskedPaths", what+" ("+how+")", detail, reqMasked)
	}
}

func minInt(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func (c *checker) checkReadonlyPaths() {
	if c.spec.Linux == nil || len(c.spec.Linux.ReadonlyPaths) == 0 {
		c.skip("readonlyPaths", "linux.readonlyPaths", "not set in config.json", reqReadonly)
		return
	}
	for _, p := range c.spec.Linux.ReadonlyPaths {
		what := p + " is read-only"
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			c.pass("readonlyPaths", what+" (absent)", reqReadonly)
			continue
		}
		// The mount that covers it is read-only. (access(2) with W_OK
		// would say EROFS only where the inode's permissions allow the
		// write: not for a /proc/sys directory, even on a read-only mount.)
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			resolved = p
		}
		detail := ""
		if mounts, err := readMountinfo(); err != nil {
			detail = err.Error()
		} else if e := coveringMount(mounts, resolved); e == nil {
			detail = expectGot("a read-only mount over "+resolved, "no mount covers it")
		} else {
			what += fmt.Sprintf(" (covering mount: %s at %s)", e.fsType, e.mountPoint)
			if !e.options["ro"] && !e.superOpts["ro"] {
				detail = expectGot("ro", fmt.Sprintf("the %s mount at %s has options %s", e.fsType, e.mountPoint, joinSet(e.options)))
			}
		}
		c.result("readonlyPaths", what, detail, reqReadonly)
	}
}

// coveringMount is the uppermost mount whose mount point is path or one of
// its parents.
func coveringMount(mounts []mountEntry, path string) *mountEntry {
	path = filepath.Clean(path)
	var best *mountEntry
	for i := range mounts {
		mp := mounts[i].mountPoint
		if mp == path || mp == "/" || strings.HasPrefix(path, mp+"/") {
			if best == nil || len(mp) >= len(best.mountPoint) {
				best = &mounts[i]
			}
		}
	}
	return best
}

// cgroupFile finds a controller's file for this process: cgroup v2 (the
// "0::" line of /proc/self/cgroup) or v1 (the controller's line), under
// /sys/fs/cgroup; at the cgroup's path there, else at the mount's root (a
// cgroup namespace, or a v1 bind mount of the container's own cgroup).
func cgroupFile(controller, v1File, v2File string) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var candidates []string
	v2Path := ""
	hasV2 := false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			hasV2, v2Path = true, parts[2]
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if ctl == controller {
				for _, dir := range []string{parts[1], controller} {
					candidates = append(candidates,
						filepath.Join("/sys/fs/cgroup", dir, parts[2], v1File),
						filepath.Join("/sys/fs/cgroup", dir, v1File))
				}
			}
		}
	}
	if hasV2 {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			candidates = append([]string{
				filepath.Join("/sys/fs/cgroup", v2Path, v2File),
				filepath.Join("/sys/fs/cgroup", v2File),
			}, candidates...)
		} else {
			candidates = append(candidates, filepath.Join("/sys/fs/cgroup/unified", v2Path, v2File))
		}
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s or %s under /sys/fs/cgroup for /proc/self/cgroup %q", v2File, v1File, strings.TrimSpace(string(data)))
}

func readTrim(path string) (string, error) {
	data, err := os.ReadFile(path)
	return strings.TrimSpace(string(data)), err
}

func (c *checker) checkResources() {
	if c.spec.Linux == nil || c.spec.Linux.Resources == nil {
		c.skip("resources", "linux.resources", "not set in config.json", reqMemory)
		return
	}
	res := c.spec.Linux.Resources
	checked := false
	if res.Memory != nil && res.Memory.Limit != nil {
		checked = true
		want := *res.Memory.Limit
		what := fmt.Sprintf("memory.limit %d is the cgroup's memory limit", want)
		path, err := cgroupFile("memory", "memory.limit_in_bytes", "memory.max")
		if err != nil {
			c.fail("resources", what, err.Error(), reqMemory)
		} else {
			got, err := readTrim(path)
			detail := ""
			if err != nil {
				detail = err.Error()
			} else if want < 0 && (got == "max" || got == "9223372036854771712") {
				detail = ""
			} else if got != strconv.FormatInt(want, 10) {
				detail = expectGot(want, got+" in "+path)
			}
			c.result("resources", what+" ("+path+")", detail, reqMemory)
		}
	}
	if res.Pids != nil {
		checked = true
		want := res.Pids.Limit
		what := fmt.Sprintf("pids.limit %d is the cgroup's pids.max", want)
		path, err := cgroupFile("pids", "pids.max", "pids.max")
		if err != nil {
			c.fail("resources", what, err.Error(), reqPids)
		} else {
			got, err := readTrim(path)
			detail := ""
			if err != nil {
				detail = err.Error()
			} else if want <= 0 && got == "max" {
				detail = ""
			} else if got != strconv.FormatInt(want, 10) {
				detail = expectGot(want, got+" in "+path)
			}
			c.result("resources", what+" ("+path+")", detail, reqPids)
		}
	}
	if !checked {
		c.skip("resources", "linux.resources", "neither memory.limit nor pids.limit set", reqMemory)
	}
}
