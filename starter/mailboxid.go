package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mailshift/mailshift/workflows"
)

// runMailboxID prints the workflow id of each target user's Mailbox
// workflows. Ids name no one (mailbox/<key>), so a person who knows an
// address finds its passes in the Web UI or the temporal CLI this way.
func runMailboxID(out io.Writer, args []string) error {
	fs := flag.NewFlagSet("mailbox-id", flag.ContinueOnError)
	tgt := fs.String("target", "target", "target endpoint name in the worker's config")
	pos, err := parseAnyOrder(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("mailbox-id TARGET_USER... [--target ENDPOINT]")
	}
	for _, user := range pos {
		fmt.Fprintf(out, "%s\t%s\n", user, workflows.MailboxWorkflowID(*tgt, user))
	}
	return nil
}
