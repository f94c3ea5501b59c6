package main

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockDB takes the exclusive lock that one `web serve` holds on the
// database at path for as long as it runs: flock(2) on PATH.lock beside
// it, which holds the pid of the holder. A second serve, or an import into
// the database, is refused with a message naming that pid; the kernel drops
// the lock when the process ends, however it ends, so a crash leaves no
// stale lock (the file itself stays). Commands that only read (verify,
// export) and replay, which is built to run beside a live site, do not
// take it.
func lockDB(path string) (release func(), err error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fail(exitFailed, "lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fail(exitFailed, "lock %s: %v", name, err)
		}
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
			return nil, fail(exitFailed, "another web serve (pid %d) is using %s", pid, path)
		}
		return nil, fail(exitFailed, "another web serve is using %s", path)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
