package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// identityPrefix marks the workers of serve processes. A serve process
// holds its database's lock for as long as it lives, so when one starts,
// every other worker whose identity carries the prefix and that ever
// talked to this database is dead.
const identityPrefix = "mailshift-serve:"

// workerIdentity is the client identity of the serve process pid.
func workerIdentity(pid int) string {
	host, _ := os.Hostname()
	return identityPrefix + strconv.Itoa(pid) + "@" + host
}

// orphanedBy reports whether a started activity last taken by the worker
// identity last belongs to a previous serve process, not to self and not to
// a worker of another kind (a `go run ./worker` beside serve may still be
// running it).
func orphanedBy(last, self string) bool {
	return strings.HasPrefix(last, identityPrefix) && last != self
}

// ErrorTypeServeRestarted is the type of the failure recorded on the
// activities requeueOrphans hands back.
const ErrorTypeServeRestarted = "ServeRestarted"

// requeueOrphans fails, as retryable, every activity that a previous serve
// process had started and that is still recorded as running. The process
// died with its worker, so nothing will heartbeat them again: without this
// the server would retry them only when their heartbeat timeout expires
// (2 minutes by default for a transfer), and the migration would stand
// still that long after every restart. Failing an attempt keeps its last
// heartbeat details (the checkpoint), and the transfer reconciles the
// uncertain tail against the target before appending, so the retry
// duplicates nothing. It returns how many it handed back.
func requeueOrphans(ctx context.Context, c client.Client, namespace, self string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n := 0
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: "ExecutionStatus = 'Running'", PageSize: 500, NextPageToken: token,
		})
		if err != nil {
			return n, fmt.Errorf("listing running workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			wid, rid := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			d, err := c.DescribeWorkflowExecution(ctx, wid, rid)
			if err != nil {
				return n, fmt.Errorf("describing workflow %s: %w", wid, err)
			}
			for _, pa := range d.GetPendingActivities() {
				if pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED || !orphanedBy(pa.GetLastWorkerIdentity(), self) {
					continue
				}
				cause := temporal.NewApplicationError(
					fmt.Sprintf("the serve process %s running this activity ended; retried by %s", pa.GetLastWorkerIdentity(), self),
					ErrorTypeServeRestarted)
				if err := c.CompleteActivityByID(ctx, namespace, wid, rid, pa.GetActivityId(), nil, cause); err != nil {
					// It may have ended in between (timed out, cancelled): not an error.
					var gone *serviceerror.NotFound
					if errors.As(err, &gone) {
						continue
					}
					return n, fmt.Errorf("handing back activity %s (%s) of workflow %s: %w", pa.GetActivityId(), pa.GetActivityType().GetName(), wid, err)
				}
				n++
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return n, nil
		}
	}
}
