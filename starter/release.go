package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/workerapp"
	"github.com/mailshift/mailshift/workflows"
)

// runReleaseMailboxes is `starter release-mailboxes ORG`: it drops the
// claims on target mailboxes that ORG holds (activities/claims.go). An
// organization releases its claims itself when it ends; this is for one
// that was terminated, so that another may migrate its mailboxes. It
// refuses while ORG's workflow runs.
func runReleaseMailboxes(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("release-mailboxes", flag.ContinueOnError)
	cfgPath := fs.String("config", os.Getenv("MAILSHIFT_CONFIG"), "the worker's configuration, whose staging store holds the claims (default: $MAILSHIFT_CONFIG, else that of the starter demo or serve at --address)")
	address := fs.String("address", "", "Temporal address")
	pos, err := parseAnyOrder(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("release-mailboxes ORG [--config FILE] [--address HOST:PORT]")
	}
	org := pos[0]
	src, err := reportSource(*cfgPath, *address)
	if err != nil {
		return fmt.Errorf("release-mailboxes: %w", err)
	}
	c, err := src.dialQuick(ctx)
	if err != nil {
		return fmt.Errorf("release-mailboxes %s: checking that the organization has ended needs Temporal: %w", org, err)
	}
	defer c.Close()
	d, err := c.DescribeWorkflowExecution(ctx, workflows.OrganizationWorkflowID(org), "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
	case err != nil:
		return fmt.Errorf("release-mailboxes %s: %w", org, err)
	case d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return fmt.Errorf("release-mailboxes %s: the organization is running, and it holds its mailboxes while it runs (it releases them when it ends; roll it back to end it now)", org)
	}
	cfg, err := config.Load(src.config)
	if err != nil {
		return err
	}
	store, err := workerapp.NewStaging(ctx, cfg.Staging)
	if err != nil {
		return err
	}
	n, err := activities.ReleaseClaims(ctx, store, org)
	if err != nil {
		return fmt.Errorf("release-mailboxes %s: %w", org, err)
	}
	fmt.Printf("%s: released %d target mailboxes in %s\n", org, n, store.Describe())
	return nil
}
