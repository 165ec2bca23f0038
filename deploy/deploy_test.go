package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	unitFile      = "admitd.service"
	containerFile = "Containerfile"
	repoRoot      = ".."
)

// The binary is built once, with the Containerfile's own go build line, so
// the flags checked here are those of the binary the image would ship.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// admitd returns the binary built by the Containerfile's builder stage.
func admitd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		var err error
		if binDir, err = os.MkdirTemp("", "admitd-deploy-"); err != nil {
			buildErr = err
			return
		}
		cf, err := parseContainerfile(containerFile)
		if err != nil {
			buildErr = err
			return
		}
		env, args, out, err := cf.goBuild()
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(binDir, filepath.Base(out))
		for i, a := range args {
			if a == out {
				args[i] = binPath
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, b)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// serveFlags are the long flag names of admitd serve, read from its help.
func serveFlags(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command(admitd(t), "serve", "--help").Output()
	if err != nil {
		t.Fatalf("serve --help: %v", err)
	}
	flags := map[string]string{} // name -> its help line
	re := regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)`)
	for _, line := range strings.Split(string(out), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			flags[m[1]] = line
		}
	}
	for _, want := range []string{"data-dir", "http-addr", "raft-addr", "id"} {
		if flags[want] == "" {
			t.Fatalf("serve --help lists no --%s; the help format changed?\n%s", want, out)
		}
	}
	return flags
}

// checkServeArgs fails for a flag admitd serve does not have, and for
// values it does not parse (--help parses every flag before printing).
func checkServeArgs(t *testing.T, args []string) {
	t.Helper()
	flags := serveFlags(t)
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if flags[name] == "" {
			t.Errorf("--%s is not a flag of admitd serve", name)
		}
	}
	cmd := exec.Command(admitd(t), append(append([]string{"serve"}, args...), "--help")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("admitd serve %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

// flagValue is the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// A systemd unit file: sections of keys, each key with every value it was
// given, in order.
type unit map[string]map[string][]string

func parseUnit(name string) (unit, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	u := unit{}
	section := ""
	var cont string // a line continued with a trailing backslash
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if cont != "" {
			line, cont = cont+" "+line, ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("%s:%d: not a key=value line in a section: %q", name, n+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		u[section][k] = append(u[section][k], v)
	}
	return u, nil
}

// get is the last value of a key, as systemd takes it for a single-valued key.
func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdUnit(t *testing.T) {
	u, err := parseUnit(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Errorf("no [%s] section", s)
		}
	}
	want := map[string]string{
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"ProtectHome":     "yes",
		"PrivateTmp":      "yes",
		"Restart":         "on-failure",
		"KillSignal":      "SIGTERM",
		"StateDirectory":  "admitd",
	}
	for k, v := range want {
		if got := u.get("Service", k); got != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	// Not root: either a user systemd allocates, or a named one that is not root.
	user := u.get("Service", "User")
	dynamic := u.get("Service", "DynamicUser") == "yes"
	if user == "root" || user == "0" || (user == "" && !dynamic) {
		t.Errorf("the service runs as root (User=%q, DynamicUser=%v)", user, dynamic)
	}
	if env := u.get("Service", "EnvironmentFile"); env != "" && !strings.HasPrefix(env, "-") {
		t.Errorf("EnvironmentFile=%s is required to exist; prefix it with - to make it optional", env)
	}
	if u.get("Install", "WantedBy") == "" {
		t.Error("[Install] has no WantedBy: systemctl enable would do nothing")
	}

	execStart := u.get("Service", "ExecStart")
	words := strings.Fields(execStart)
	if len(words) < 2 || filepath.Base(words[0]) != "admitd" || words[1] != "serve" {
		t.Fatalf("ExecStart=%s does not run admitd serve", execStart)
	}
	var args []string // the flags as admitd sees them when the environment file sets nothing
	for _, w := range words[2:] {
		if strings.HasPrefix(w, "$") {
			continue // $VAR: split into words by systemd; none when unset
		}
		args = append(args, strings.ReplaceAll(w, "%H", "host1"))
	}
	dataDir, ok := flagValue(args, "data-dir")
	if !ok {
		t.Fatalf("ExecStart=%s has no --data-dir: admitd would write to ./data under /", execStart)
	}
	if stateDir := "/var/lib/" + u.get("Service", "StateDirectory"); dataDir != stateDir {
		t.Errorf("--data-dir %s is not the state directory %s", dataDir, stateDir)
	}
	if !slices.Contains(strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " ")), dataDir) {
		t.Errorf("ReadWritePaths does not name %s: ProtectSystem=strict leaves it read-only", dataDir)
	}
	checkServeArgs(t, args)

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not on PATH")
		}
		// A copy whose ExecStart runs the binary just built: verify checks
		// that the command exists and is executable.
		b, err := os.ReadFile(unitFile)
		if err != nil {
			t.Fatal(err)
		}
		copied := bytes.Replace(b, []byte("ExecStart="+words[0]), []byte("ExecStart="+admitd(t)), 1)
		dir := t.TempDir()
		path := filepath.Join(dir, unitFile)
		if err := os.WriteFile(path, copied, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
		// An unknown key or a bad value is only a warning (exit 0): any
		// line about this file fails the test. Other lines are about the
		// machine's own units.
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, unitFile) {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	})
}

// One instruction of a Containerfile, its continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// A stage: its FROM and the instructions after it.
type stage struct {
	image, name string
	ins         []instruction
}

type containerfile struct{ stages []stage }

func parseContainerfile(name string) (*containerfile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cf := &containerfile{}
	var cur *instruction
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur == nil) {
			continue // a comment, also between continuation lines
		}
		more := strings.HasSuffix(line, `\`)
		line = strings.TrimSuffix(line, `\`)
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			cur = &instruction{line: n, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else {
			cur.args = strings.TrimSpace(cur.args + " " + line)
		}
		if more {
			continue
		}
		in := *cur
		cur = nil
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			cf.stages = append(cf.stages, st)
			continue
		}
		if len(cf.stages) == 0 {
			return nil, fmt.Errorf("%s:%d: %s before any FROM", name, in.line, in.cmd)
		}
		st := &cf.stages[len(cf.stages)-1]
		st.ins = append(st.ins, in)
	}
	if cur != nil {
		return nil, fmt.Errorf("%s: the last instruction ends with a backslash", name)
	}
	if len(cf.stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", name)
	}
	return cf, sc.Err()
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last is the last instruction cmd of the stage, the one that counts for
// USER, ENTRYPOINT and CMD.
func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

func (cf *containerfile) stage(name string) (stage, bool) {
	for _, s := range cf.stages {
		if s.name == name {
			return s, true
		}
	}
	return stage{}, false
}

// copyFrom finds the final stage's COPY --from=STAGE SRC /admitd: the
// stage that builds the binary and where it puts it.
func (cf *containerfile) copyFrom(dst string) (from, src string, err error) {
	final := cf.stages[len(cf.stages)-1]
	for _, in := range final.all("COPY") {
		f := strings.Fields(in.args)
		var opts, paths []string
		for _, w := range f {
			if strings.HasPrefix(w, "--") {
				opts = append(opts, w)
			} else {
				paths = append(paths, w)
			}
		}
		if len(paths) != 2 || paths[1] != dst {
			continue
		}
		for _, o := range opts {
			if v, ok := strings.CutPrefix(o, "--from="); ok {
				return v, paths[0], nil
			}
		}
	}
	return "", "", fmt.Errorf("the final stage copies nothing from a build stage to %s", dst)
}

// goBuild is the builder's go build command: the environment assignments
// before it, its words, and its -o path.
func (cf *containerfile) goBuild() (env, args []string, out string, err error) {
	final := cf.stages[len(cf.stages)-1]
	ep, ok := final.last("ENTRYPOINT")
	if !ok {
		return nil, nil, "", fmt.Errorf("no ENTRYPOINT in the final stage")
	}
	var entry []string
	if err := json.Unmarshal([]byte(ep.args), &entry); err != nil || len(entry) == 0 {
		return nil, nil, "", fmt.Errorf("ENTRYPOINT %s is not an exec-form list: %v", ep.args, err)
	}
	from, src, err := cf.copyFrom(entry[0])
	if err != nil {
		return nil, nil, "", err
	}
	builder, ok := cf.stage(from)
	if !ok {
		return nil, nil, "", fmt.Errorf("COPY --from=%s names no stage", from)
	}
	for _, in := range builder.all("RUN") {
		for _, part := range strings.Split(in.args, "&&") {
			words := strings.Fields(part)
			i := 0
			for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") {
				i++
			}
			if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
				continue
			}
			env, args = words[:i], words[i:]
			for j, w := range args {
				if w == "-o" && j+1 < len(args) {
					out = args[j+1]
				}
			}
			if out != src {
				return nil, nil, "", fmt.Errorf("go build writes %q, the final stage copies %q", out, src)
			}
			return env, args, out, nil
		}
	}
	return nil, nil, "", fmt.Errorf("stage %s has no RUN go build", from)
}

func TestContainerfile(t *testing.T) {
	cf, err := parseContainerfile(containerFile)
	if err != nil {
		t.Fatal(err)
	}
	final := cf.stages[len(cf.stages)-1]

	// Not root: a numeric uid, which a runtime can check without the
	// image's /etc/passwd (Kubernetes' runAsNonRoot needs one).
	user, ok := final.last("USER")
	if !ok {
		t.Fatal("the final stage sets no USER: it runs as root")
	}
	uid, _, _ := strings.Cut(user.args, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %s: want a numeric uid other than 0", user.args)
	}

	var cmd []string
	in, ok := final.last("CMD")
	if !ok {
		t.Fatal("no CMD in the final stage")
	}
	if err := json.Unmarshal([]byte(in.args), &cmd); err != nil || len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("CMD %s: want an exec-form list starting with serve (%v)", in.args, err)
	}
	dataDir, ok := flagValue(cmd, "data-dir")
	if !ok {
		t.Fatalf("CMD has no --data-dir")
	}
	vol, ok := final.last("VOLUME")
	if !ok {
		t.Fatal("no VOLUME: the raft state would live in the container's writable layer")
	}
	var vols []string
	if err := json.Unmarshal([]byte(vol.args), &vols); err != nil {
		vols = strings.Fields(vol.args)
	}
	if !slices.Contains(vols, dataDir) {
		t.Errorf("VOLUME %s does not hold --data-dir %s", vol.args, dataDir)
	}
	// A new volume takes the image directory's owner: it must be the user's.
	owned := false
	for _, c := range final.all("COPY") {
		f := strings.Fields(c.args)
		if slices.Contains(f, "--chown="+user.args) && f[len(f)-1] == dataDir {
			owned = true
		}
	}
	if !owned {
		t.Errorf("no COPY --chown=%s creates %s: a new volume there would not be writable", user.args, dataDir)
	}
	checkServeArgs(t, cmd[1:])

	// The HTTP port of CMD and raft's default port are exposed.
	var ports []string
	for _, e := range final.all("EXPOSE") {
		ports = append(ports, strings.Fields(e.args)...)
	}
	httpAddr, ok := flagValue(cmd, "http-addr")
	if !ok {
		t.Fatal("CMD has no --http-addr: the API would listen on the container's loopback only")
	}
	raftDefault := regexp.MustCompile(`\(default "([^"]+)"\)`).FindStringSubmatch(serveFlags(t)["raft-addr"])
	if raftDefault == nil {
		t.Fatalf("no default in %q", serveFlags(t)["raft-addr"])
	}
	for _, addr := range []string{httpAddr, raftDefault[1]} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(ports, port) && !slices.Contains(ports, port+"/tcp") {
			t.Errorf("EXPOSE %v lacks port %s (%s)", ports, port, addr)
		}
	}

	// The builder's Go is the one go.mod asks for (major.minor).
	builderImage := ""
	from, _, err := cf.copyFrom("/admitd")
	if err == nil {
		s, _ := cf.stage(from)
		builderImage = s.image
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil || !strings.HasPrefix(builderImage, "golang:"+string(m[1])) {
		t.Errorf("builder image %q is not golang:%s, the Go of go.mod", builderImage, m[1])
	}

	// The builder's exact go build line makes a binary that runs.
	out, err := exec.Command(admitd(t), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "admitd ") {
		t.Fatalf("the built admitd version: %v\n%s", err, out)
	}
}

// The parser reads what the tests rely on: continuation lines, comments
// between them, stage names, and the COPY that names the build stage.
func TestParseContainerfile(t *testing.T) {
	src := "FROM golang:1.26 AS b\n# c\nRUN A=1 \\\n  # inside\n  go build -o /o/x ./cmd/x\nFROM scratch\nCOPY --from=b /o/x /x\nENTRYPOINT [\"/x\"]\n"
	path := filepath.Join(t.TempDir(), "Containerfile")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cf, err := parseContainerfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.stages) != 2 || cf.stages[0].name != "b" || cf.stages[1].image != "scratch" {
		t.Fatalf("stages %+v", cf.stages)
	}
	env, args, out, err := cf.goBuild()
	if err != nil || strings.Join(env, " ") != "A=1" || strings.Join(args, " ") != "go build -o /o/x ./cmd/x" || out != "/o/x" {
		t.Fatalf("goBuild: %q %q %q %v", env, args, out, err)
	}
	bad := strings.Replace(src, "/o/x /x", "/o/y /x", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if cf, err = parseContainerfile(path); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := cf.goBuild(); err == nil {
		t.Error("a COPY of another path than go build's -o was accepted")
	}
}
