package secrets

import (
	"fmt"
	"os"
	"syscall"
)

// changeStamp adds what a copy that keeps the modification time (cp -p,
// rsync -t) or a same-size rewrite within the clock's resolution still
// changes: the inode and the change time, which no user can set.
func changeStamp(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("/%d/%d.%d", st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}
