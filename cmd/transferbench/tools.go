package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mailshift/mailshift/internal/dovecottest"
)

func atomicAdd(p *int64, n int64) { atomic.AddInt64(p, n) }

var countMu sync.Mutex

func atomicAddInt(p *int, n int) {
	countMu.Lock()
	*p += n
	countMu.Unlock()
}

func atomicMax(p *int64, v int64) {
	for {
		old := atomic.LoadInt64(p)
		if v <= old || atomic.CompareAndSwapInt64(p, old, v) {
			return
		}
	}
}

// mbsyncConfig writes an mbsync configuration with one channel per mailbox
// (far: source, near: target) and returns its path.
func mbsyncConfig(dir string, src, tgt *dovecottest.Instance, users, pws []string) (string, error) {
	state := filepath.Join(dir, "state") + "/"
	if err := os.MkdirAll(state, 0o700); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SyncState %s\n\n", state)
	for i, u := range users {
		for _, side := range []struct {
			name string
			inst *dovecottest.Instance
		}{{"src", src}, {"tgt", tgt}} {
			fmt.Fprintf(&b, "IMAPAccount %s%02d\nHost 127.0.0.1\nPort %d\nUser %s\nPass %s\nSSLType None\nAuthMechs LOGIN\n\n", side.name, i, side.inst.Port(), u, pws[i])
			fmt.Fprintf(&b, "IMAPStore %s%02d\nAccount %s%02d\n\n", side.name, i, side.name, i)
		}
		fmt.Fprintf(&b, "Channel ch%02d\nFar :src%02d:\nNear :tgt%02d:\nPatterns *\nSync Pull\nCreate Near\nCopyArrivalDate yes\n\n", i, i, i)
	}
	path := filepath.Join(dir, "mbsyncrc")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// mbsyncCmds splits the channels over p processes (mbsync syncs its
// channels one after the other).
func mbsyncCmds(conf string, n, p int, dir string) ([]*exec.Cmd, error) {
	bin := findTool("mbsync")
	if bin == "" {
		return nil, fmt.Errorf("mbsync not installed")
	}
	groups := make([][]string, p)
	for i := range n {
		groups[i%p] = append(groups[i%p], fmt.Sprintf("ch%02d", i))
	}
	var cmds []*exec.Cmd
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		cmd := exec.Command(bin, append([]string{"-c", conf, "-q"}, g...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir)
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

// doveadmCmds: one "doveadm backup -R" per mailbox, the source reached with
// imapc, run with the target instance's configuration.
func doveadmCmds(src, tgt *dovecottest.Instance, users, pws []string, dir string) ([]*exec.Cmd, error) {
	var cmds []*exec.Cmd
	for i, u := range users {
		cmd := tgt.DoveadmCmd(
			"-o", "mail_fsync=never",
			"-o", "imapc_host=127.0.0.1",
			"-o", "imapc_port="+strconv.Itoa(src.Port()),
			"-o", "imapc_user="+u,
			"-o", "imapc_password="+pws[i],
			"-o", "imapc_features=rfc822.size fetch-headers",
			"-o", "mail_prefetch_count=20",
			"backup", "-R", "-u", u, "imapc:")
		cmd.Dir = dir
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}
