package testsuite

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/demo"
	"github.com/mailshift/mailshift/internal/estate"
	"github.com/mailshift/mailshift/workflows"
)

// fetchHistory reads a run's history; runID "" is the latest run.
func fetchHistory(t *testing.T, ctx context.Context, env *demo.Env, id, runID string) *historypb.History {
	t.Helper()
	return fetchHistoryWith(t, ctx, env.Client, id, runID)
}

// fetchHistoryWith is fetchHistory with client c. Events come as the
// server stores them: no client decodes history events.
func fetchHistoryWith(t *testing.T, ctx context.Context, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	iter := c.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}

// clearScan is what scanHistory found in one history.
type clearScan struct {
	payloads, encrypted, failures int
	// leaks are the places a secret appears in clear, with the secret.
	leaks []string
	// clear are payloads (outside search attributes) not encrypted.
	clear []string
	// failureText are failures whose message or stack trace is in clear.
	failureText []string
}

// scanHistory walks every field of every event of h, as stored by the
// server (no codec involved), looking for any of secrets in clear: in
// payloads (inputs, results, heartbeats, memos, summaries, failure
// details), in failure messages and stack traces, and in every other
// string or bytes field.
//
// Workflow ids are scanned like every other string: they are not payloads
// a codec can encrypt, so they must name no one (Mailbox workflows are
// mailbox/<key>). Search attributes must stay readable by the server, so
// their payloads are expected in clear, but they are still scanned for
// secrets.
func scanHistory(h *historypb.History, secrets []string) clearScan {
	var s clearScan
	var walk func(m protoreflect.Message, path string, inSearchAttrs bool)
	check := func(path string, b []byte) {
		for _, sec := range secrets {
			if bytes.Contains(b, []byte(sec)) {
				s.leaks = append(s.leaks, fmt.Sprintf("%s: %q", path, sec))
			}
		}
	}
	walk = func(m protoreflect.Message, path string, inSearchAttrs bool) {
		switch m.Descriptor().FullName() {
		case "temporal.api.common.v1.Payload":
			s.payloads++
			if string(m.Interface().(*commonpb.Payload).GetMetadata()[codec.MetadataEncoding]) == codec.Encoding {
				s.encrypted++
			} else if !inSearchAttrs {
				s.clear = append(s.clear, path)
			}
		case "temporal.api.failure.v1.Failure":
			s.failures++
			f := m.Interface().(*failurepb.Failure)
			if f.GetMessage() != "Encoded failure" || f.GetStackTrace() != "" {
				s.failureText = append(s.failureText, fmt.Sprintf("%s: message %q, stack trace of %d bytes", path, f.GetMessage(), len(f.GetStackTrace())))
			}
		case "temporal.api.common.v1.SearchAttributes":
			inSearchAttrs = true
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			p := path + "." + string(fd.Name())
			value := func(p string, v protoreflect.Value, kind protoreflect.Kind) {
				switch kind {
				case protoreflect.MessageKind, protoreflect.GroupKind:
					walk(v.Message(), p, inSearchAttrs)
				case protoreflect.StringKind:
					check(p, []byte(v.String()))
				case protoreflect.BytesKind:
					check(p, v.Bytes())
				}
			}
			switch {
			case fd.IsList():
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					value(fmt.Sprintf("%s[%d]", p, i), l.Get(i), fd.Kind())
				}
			case fd.IsMap():
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					check(p+"{key}", []byte(k.String()))
					value(fmt.Sprintf("%s[%s]", p, k.String()), mv, fd.MapValue().Kind())
					return true
				})
			default:
				value(p, v, fd.Kind())
			}
			return true
		})
	}
	for _, ev := range h.GetEvents() {
		walk(ev.ProtoReflect(), fmt.Sprintf("event %d %s", ev.GetEventId(), ev.GetEventType()), false)
	}
	return s
}

// failingWorkflowName names a workflow and its activity that fail quoting
// the mailbox address they are given.
const failingWorkflowName = "test-failing-with-address"

func failingWorkflow(ctx workflow.Context, address string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteActivity(ctx, failingWorkflowName, address).Get(ctx, nil)
}

func failingActivity(_ context.Context, address string) error {
	return fmt.Errorf("mailbox %s: folder Réunions/Été 2024: refused", address)
}

// requireHistoriesEncrypted checks, after a migration with the demo's
// payload encryption, the histories of every organization, the first
// mailbox of each and a workflow that failed quoting an address, read with
// a client that has no codec: no address, source user, password or user
// folder name of the estate appears in clear, every payload but the search
// attributes is encrypted, and every failure message is the codec's
// placeholder. Through the codec the inputs, summaries and failures
// decode, and the histories replay.
func requireHistoriesEncrypted(t *testing.T, ctx context.Context, env *demo.Env) {
	t.Helper()
	plain, err := env.Server.Client(ctx, client.Options{})
	require.NoError(t, err)
	defer plain.Close()
	dc := env.Codec.DataConverter()

	// A failure that quotes an address, from the worker.
	victim := env.Estate.Orgs[0].Mailboxes[0].Address
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "test-failing", TaskQueue: workflows.TaskQueue}, failingWorkflowName, victim)
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.ErrorContains(t, err, victim, "through the codec the failure decodes")

	var secrets []string
	for _, mb := range env.Estate.Mailboxes() {
		secrets = append(secrets, mb.Address, mb.User, mb.Password)
	}
	lines := estateLines(env.Estate)
	secrets = append(secrets, lines...)
	t.Logf("looking for %d addresses, users and passwords and %d Message-IDs, subjects and message lines", 3*len(env.Estate.Mailboxes()), len(lines))
	// User folders: the standard ones (INBOX, Sent) are no one's data.
	secrets = append(secrets, "Archive/2023", "Réunions", "Été 2024", "Ärzte")

	ids := []string{"test-failing"}
	for _, in := range env.Inputs {
		ids = append(ids, workflows.OrganizationWorkflowID(in.Code), workflows.MailboxWorkflowID(in.TargetEndpoint, in.Mailboxes[0].TargetUser))
	}
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter:    dc,
		FailureConverter: temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true}),
	})
	require.NoError(t, err)
	replayer.RegisterWorkflowWithOptions(workflows.Organization, workflow.RegisterOptions{Name: workflows.OrganizationWorkflowName})
	replayer.RegisterWorkflowWithOptions(workflows.Mailbox, workflow.RegisterOptions{Name: workflows.MailboxWorkflowName})

	var total clearScan
	summaries := 0
	for _, id := range ids {
		h := fetchHistoryWith(t, ctx, plain, id, "")
		s := scanHistory(h, secrets)
		require.Empty(t, s.leaks, "history of %s holds personal data in clear", id)
		require.Empty(t, s.clear, "history of %s holds payloads in clear", id)
		require.Empty(t, s.failureText, "history of %s holds failure text in clear", id)
		require.Less(t, len(h.Events), 10000, "history of %s", id)
		total.payloads += s.payloads
		total.encrypted += s.encrypted
		total.failures += s.failures

		// Through the codec the input is what was started.
		started := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
		switch started.GetWorkflowType().GetName() {
		case workflows.OrganizationWorkflowName:
			var in workflows.OrganizationInput
			require.NoError(t, dc.FromPayloads(started.GetInput(), &in))
			require.Equal(t, workflows.OrganizationWorkflowID(in.Code), id)
			require.NoError(t, replayer.ReplayWorkflowHistory(nil, h), "replay %s", id)
		case workflows.MailboxWorkflowName:
			var in workflows.MailboxInput
			require.NoError(t, dc.FromPayloads(started.GetInput(), &in))
			require.Equal(t, workflows.MailboxWorkflowID(in.Mailbox.TargetEndpoint, in.Mailbox.TargetUser), id)
			require.NoError(t, replayer.ReplayWorkflowHistory(nil, h), "replay %s", id)
		}
		// Child summaries name the mailbox; they are user metadata, a payload.
		for _, ev := range h.Events {
			if ev.GetEventType() != enums.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED || ev.GetUserMetadata().GetSummary() == nil {
				continue
			}
			var summary string
			require.NoError(t, dc.FromPayload(ev.GetUserMetadata().GetSummary(), &summary))
			attrs := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes()
			var in workflows.MailboxInput
			require.NoError(t, dc.FromPayloads(attrs.GetInput(), &in))
			child := attrs.GetWorkflowId()
			require.Equal(t, workflows.MailboxWorkflowID(in.Mailbox.TargetEndpoint, in.Mailbox.TargetUser), child)
			require.Contains(t, summary, in.Mailbox.Address, "summary of child %s", child)
			// The child is listed by organization, not by a name in its id.
			var code string
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(attrs.GetSearchAttributes().GetIndexedFields()[workflows.SAOrganizationCode.GetName()], &code))
			require.Equal(t, in.Mailbox.Org, code, "OrganizationCode of child %s", child)
			summaries++
		}
	}
	t.Logf("histories of %d workflows: %d payloads (%d encrypted; the rest search attributes), %d failures, %d child summaries",
		len(ids), total.payloads, total.encrypted, total.failures, summaries)
	require.Positive(t, summaries, "no child summary was checked")
	require.GreaterOrEqual(t, total.failures, 2, "the failing workflow's activity and workflow failures were checked")
}

// estateLines are the Message-IDs, subjects and body lines of every
// message of an estate: what a message says is no one's business but its
// owner's.
func estateLines(e *estate.Estate) []string {
	lines := map[string]bool{}
	for _, mb := range e.Mailboxes() {
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				for _, l := range messageSecrets(m.Raw) {
					lines[l] = true
				}
			}
		}
	}
	out := make([]string, 0, len(lines))
	for l := range lines {
		out = append(out, l)
	}
	return out
}

// messageSecrets returns the Message-ID and Subject of a raw message and
// its body lines long enough to be its own (20 bytes or more: short lines
// such as "Regards," could be anyone's).
func messageSecrets(raw []byte) []string {
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var out []string
	for _, l := range strings.Split(string(head), "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if v = strings.TrimSpace(v); ok && len(v) >= 12 && (strings.EqualFold(k, "Message-ID") || strings.EqualFold(k, "Subject")) {
			out = append(out, v)
		}
	}
	for i, l := range strings.Split(string(body), "\r\n") {
		if i >= 50 {
			break
		}
		if l = strings.TrimSpace(l); len(l) >= 20 && !strings.HasPrefix(l, "--") && !strings.Contains(l, ":") {
			out = append(out, l)
		}
	}
	return out
}

// TestScanHistoryFindsClearData: the scan itself sees what it must, so a
// clean result means something.
func TestScanHistoryFindsClearData(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	in, err := dc.ToPayloads("alice@rxh.example")
	require.NoError(t, err)
	h := &historypb.History{Events: []*historypb.HistoryEvent{{
		EventId: 1, EventType: enums.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input:                   in,
			ParentWorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: "mailbox/RXH/alice@rxh.example"},
			ContinuedFailure:        &failurepb.Failure{Message: "Réunions: refused"},
		}},
	}}}
	s := scanHistory(h, []string{"alice@rxh.example", "Réunions"})
	require.Len(t, s.leaks, 3, "the input, the workflow id and the failure message: %v", s.leaks)
	require.Len(t, s.clear, 1)
	require.Len(t, s.failureText, 1)

	raw := []byte("From: a@b.example\r\nMessage-ID: <123.abc@rxh.example>\r\nSubject: Ward 7 rota for June\r\n\r\nHello,\r\nThe night shifts on ward 7 move to Thursdays.\r\nRegards,\r\n")
	require.Equal(t, []string{"<123.abc@rxh.example>", "Ward 7 rota for June", "The night shifts on ward 7 move to Thursdays."}, messageSecrets(raw))
}
