package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailshift/mailshift/internal/estate"
)

// Account is the estate.Account of a mailbox on this instance.
func (inst *Instance) Account(mb *estate.Mailbox) estate.Account {
	return estate.Account{Addr: inst.Addr(), User: mb.User, Password: mb.Password}
}

// FolderPath maps an estate folder path ("/"-delimited) of mb to this
// instance's folder path, still "/"-delimited: a special-use folder (and
// everything below it) takes the instance's name for that special use,
// e.g. "Sent" -> "Sent Messages".
func (inst *Instance) FolderPath(mb *estate.Mailbox, path string) string {
	best := ""
	for _, f := range mb.Folders {
		if f.SpecialUse == "" || inst.opts.SpecialUse[f.SpecialUse] == "" {
			continue
		}
		if (path == f.Name || strings.HasPrefix(path, f.Name+"/")) && len(f.Name) > len(best) {
			best = f.Name
		}
	}
	if best == "" {
		return path
	}
	return inst.opts.SpecialUse[mb.Folder(best).SpecialUse] + path[len(best):]
}

// FolderName is FolderPath with the instance's separator: the IMAP name.
func (inst *Instance) FolderName(mb *estate.Mailbox, path string) (string, error) {
	p := inst.FolderPath(mb, path)
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if strings.ContainsRune(c, inst.opts.Separator) {
			return "", fmt.Errorf("dovecottest: folder %q: component %q contains the separator %q", path, c, inst.opts.Separator)
		}
	}
	return strings.Join(parts, string(inst.opts.Separator)), nil
}

// FolderMap returns an estate.VerifyOptions.MapFolder for mb from src's
// folder paths to tgt's (special-use renames; both "/"-delimited).
func FolderMap(mb *estate.Mailbox, src, tgt *Instance) func(string) string {
	m := map[string]string{}
	for _, f := range mb.Folders {
		m[src.FolderPath(mb, f.Name)] = tgt.FolderPath(mb, f.Name)
	}
	return func(s string) string {
		if t, ok := m[s]; ok {
			return t
		}
		return s
	}
}

// LoadEstate adds the users of mbs and loads their mailboxes (LoadMailbox),
// up to GOMAXPROCS mailboxes at a time.
func LoadEstate(inst *Instance, mbs []*estate.Mailbox) error {
	errs := make([]error, len(mbs))
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, mb := range mbs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = LoadMailbox(inst, mb)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appendWindow is how many APPENDs are in flight on one connection.
const appendWindow = 16

// LoadMailbox adds mb's user and, over IMAP, creates and subscribes every
// folder (in order, so parents first) and APPENDs its messages in order with
// their flags and INTERNALDATE, so UIDs follow Folder.Messages order. The
// APPENDs are pipelined (LITERAL+).
func LoadMailbox(inst *Instance, mb *estate.Mailbox) error {
	if err := inst.AddUser(mb.User, mb.Password); err != nil {
		return err
	}
	c, err := imapclient.DialInsecure(inst.Addr(), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(mb.User, mb.Password).Wait(); err != nil {
		return fmt.Errorf("dovecottest: %s: LOGIN: %w", mb.User, err)
	}
	for _, f := range mb.Folders {
		name, err := inst.FolderName(mb, f.Name)
		if err != nil {
			return err
		}
		if !strings.EqualFold(name, "INBOX") {
			if err := c.Create(name, nil).Wait(); err != nil && !alreadyExists(err) {
				return fmt.Errorf("dovecottest: %s: CREATE %q: %w", mb.User, name, err)
			}
			if err := c.Subscribe(name).Wait(); err != nil {
				return fmt.Errorf("dovecottest: %s: SUBSCRIBE %q: %w", mb.User, name, err)
			}
		}
		var inflight []*imapclient.AppendCommand
		wait := func(n int) error {
			for len(inflight) > n {
				if _, err := inflight[0].Wait(); err != nil {
					return fmt.Errorf("dovecottest: %s: APPEND to %q: %w", mb.User, name, err)
				}
				inflight = inflight[1:]
			}
			return nil
		}
		for i := range f.Messages {
			msg := &f.Messages[i]
			cmd := c.Append(name, int64(len(msg.Raw)), &imap.AppendOptions{Flags: msg.Flags, Time: msg.Date})
			// Close even after a failed Write: it releases the command lock.
			_, werr := cmd.Write(msg.Raw)
			if err := errors.Join(werr, cmd.Close()); err != nil {
				if _, rerr := cmd.Wait(); rerr != nil {
					err = rerr
				}
				return fmt.Errorf("dovecottest: %s: APPEND to %q: %w", mb.User, name, err)
			}
			inflight = append(inflight, cmd)
			if err := wait(appendWindow); err != nil {
				return err
			}
		}
		if err := wait(0); err != nil {
			return err
		}
	}
	return c.Logout().Wait()
}

func alreadyExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && (ie.Code == imap.ResponseCodeAlreadyExists || bytes.Contains([]byte(strings.ToLower(ie.Text)), []byte("exists")))
}
