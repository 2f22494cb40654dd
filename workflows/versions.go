package workflows

import "go.temporal.io/sdk/workflow"

// Version ids of changes to the Organization workflow that shipped while
// runs were in flight (see docs/changing-workflows.md). Each is read once,
// in setup; the histories recorded before each change are replayed by
// TestHistoriesOfShippedVersionsReplay (testdata/histories/<version>).
const (
	// versionReportByResult marks the change from "every Mailbox workflow
	// reports by signal" to "report through the result, by signal only when
	// handed over", together with local first passes.
	versionReportByResult = "report-by-result"

	// versionLean marks readiness checked in batches (no workflow per
	// mailbox), validation inside the post-switch pass, and DirectMaxBytes:
	// together they bring a small mailbox from five Mailbox workflows down
	// to one or two.
	versionLean = "lean-lifecycle"

	// versionLiveProgress marks what makes the Web UI's list and details
	// tell the truth while and after an organization runs: the details are
	// set on every booked mailbox pass and the counters' search attributes
	// are upserted at most once per liveUpsertEvery while mailboxes run
	// (more UpsertWorkflowSearchAttributes events); pause and resume upsert
	// MigrationPaused; MailboxesCopied is counted; a mailbox that validation
	// scores Poor is failed; and an organization that rolls back or fails
	// ends its workflow with an error carrying its Progress (a failed
	// workflow, not a completed one).
	versionLiveProgress = "live-progress"

	// versionTruth marks what makes an organization's account of itself
	// true after crashes and while it changes: the messages and bytes of
	// the result are the report's count of what is in the target (ledgers
	// and validations) instead of the sum of pass results, and the
	// add-mailboxes update grows a running organization's mailbox table.
	versionTruth = "truthful-progress"

	// versionOpaqueIDs marks Mailbox workflow ids that name the target
	// mailbox by its opaque key (mailbox/<key>, activities.MailboxKey)
	// instead of its organization and address, and Mailbox workflows that
	// carry their OrganizationCode search attribute so they can still be
	// listed by organization. Temporal then refuses a second running
	// writer of one target mailbox anywhere in the namespace.
	versionOpaqueIDs = "opaque-mailbox-ids"

	// versionSealed marks mailboxes left alone while they are unchanged:
	// readiness asks whether each mailbox's seal (activities.Seal, written
	// by a validation that found it consistent) still holds; such a
	// mailbox takes no copy pass, is checked again (CheckUnchanged) before
	// the final pass and after the routing switch, and is booked with its
	// sealed validation. One that changed meanwhile takes the passes it
	// missed from there on.
	versionSealed = "sealed-mailboxes"

	// versionFreshRecheck marks the check of unchanged mailboxes before
	// the final pass left out when the final pass is (freshCopy): its only
	// use is to send the mailboxes that changed since readiness into that
	// pass, and the check after the switch sends them into the post-switch
	// pass all the same. A re-run of an unchanged organization saves one
	// CheckUnchanged activity per page of mailboxes.
	versionFreshRecheck = "fresh-recheck"
)

// readVersions reads every version gate once, so the rest of the run asks
// a field and not the SDK.
func (o *organization) readVersions(ctx workflow.Context) {
	// Runs recorded before mailboxes reported through their result keep
	// replaying as they ran: every child signals, and none runs locally.
	o.byResult = workflow.GetVersion(ctx, versionReportByResult, workflow.DefaultVersion, 1) >= 1
	o.lean = workflow.GetVersion(ctx, versionLean, workflow.DefaultVersion, 1) >= 1
	o.live = workflow.GetVersion(ctx, versionLiveProgress, workflow.DefaultVersion, 1) >= 1
	o.truth = workflow.GetVersion(ctx, versionTruth, workflow.DefaultVersion, 1) >= 1
	o.opaqueIDs = workflow.GetVersion(ctx, versionOpaqueIDs, workflow.DefaultVersion, 1) >= 1
	o.sealed = workflow.GetVersion(ctx, versionSealed, workflow.DefaultVersion, 1) >= 1
	o.freshRecheck = workflow.GetVersion(ctx, versionFreshRecheck, workflow.DefaultVersion, 1) >= 1
}
