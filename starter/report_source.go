package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mailshift/mailshift/control"
	"github.com/mailshift/mailshift/internal/embedded"
	"github.com/mailshift/mailshift/internal/htmlreport"
	"github.com/mailshift/mailshift/workflows"
)

// reportTemporalTimeout bounds what report asks Temporal: the report is
// read from the staging store, and a Temporal that is down or far away
// must not hold it up.
const reportTemporalTimeout = 5 * time.Second

// source is where a report comes from: the worker configuration (its
// staging store) and the Temporal client settings for what only the
// workflows know.
type source struct {
	config  string
	options client.Options
	session *embedded.Session
}

// reportSource resolves the worker configuration: --config or
// $MAILSHIFT_CONFIG, else the one recorded by a starter demo or serve for
// the address report would dial.
func reportSource(cfgPath, address string) (source, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return source{}, fmt.Errorf("temporal client settings: %w", err)
	}
	if address != "" {
		opts.HostPort = address
	}
	opts.HostPort = orDefault(opts.HostPort, client.DefaultHostPort)
	src := source{config: cfgPath, options: opts}
	if cfgPath != "" {
		return src, nil
	}
	s, err := lookupSession(opts.HostPort)
	if err != nil {
		return src, fmt.Errorf("report: %w", err)
	}
	if s != nil {
		src.config, src.session = s.Config, s
		// Dial the session itself: the address it recorded (the one
		// asked for may be an alias of it) and its namespace unless one
		// was chosen.
		src.options.HostPort = s.Address
		if os.Getenv("TEMPORAL_NAMESPACE") == "" && s.Namespace != "" {
			src.options.Namespace = s.Namespace
		}
		ended := ""
		if !processAlive(s.PID) {
			ended = fmt.Sprintf(" (it has ended, pid %d; its staging store remains)", s.PID)
		}
		fmt.Fprintf(os.Stderr, "report: using the worker configuration of the starter %s at %s%s: %s\n", s.Kind, s.Address, ended, s.Config)
		return src, nil
	}
	return src, fmt.Errorf("report: no worker configuration: give --config FILE or set MAILSHIFT_CONFIG (the report is read from the worker's staging store); "+
		"beside a `starter demo --keep` or `starter serve` none is needed, but none is recorded for Temporal at %s (pass its --address)", opts.HostPort)
}

// loopbackAliases lists addr and, for a loopback host, the same port on
// the other loopback names: the client dials localhost:7233 by default,
// the demo listens on 127.0.0.1:7233.
func loopbackAliases(addr string) []string {
	out := []string{addr}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return out
	}
	switch host {
	case "localhost", "127.0.0.1", "::1":
	default:
		return out
	}
	for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
		if h != host {
			out = append(out, net.JoinHostPort(h, port))
		}
	}
	return out
}

// processAlive reports whether pid runs (signal 0 checks without sending).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// dialQuick dials within reportTemporalTimeout, with a logger that keeps
// the SDK's retries off the terminal.
func (s source) dialQuick(ctx context.Context) (client.Client, error) {
	opts := s.options
	if err := withCodec(&opts, s.config); err != nil {
		return nil, err
	}
	opts.Logger = sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	dctx, cancel := context.WithTimeout(ctx, reportTemporalTimeout)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s: %w", opts.HostPort, err)
	}
	return c, nil
}

// organizationProgress asks Temporal for the organization's result (or,
// while it runs, its progress). It never fails the report: without an
// answer the note says why, and the page says the workflow's view is
// missing.
func organizationProgress(ctx context.Context, src source, org string) (*workflows.Progress, string) {
	c, err := src.dialQuick(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "report: %v; the report shows what the staging store holds\n", err)
		return nil, err.Error()
	}
	defer c.Close()
	qctx, cancel := context.WithTimeout(ctx, 2*reportTemporalTimeout)
	defer cancel()
	ps, _, err := control.ListStatus(qctx, c, control.StatusFilter{Codes: []string{org}}, false)
	switch {
	case err != nil:
		note := fmt.Sprintf("listing organization %s at %s: %v", org, src.options.HostPort, err)
		fmt.Fprintf(os.Stderr, "report: %s\n", note)
		return nil, note
	case len(ps) == 0:
		return nil, fmt.Sprintf("no workflow %s in namespace %s at %s", workflows.OrganizationWorkflowID(org), orDefault(src.options.Namespace, client.DefaultNamespace), src.options.HostPort)
	}
	p := ps[0]
	if p.Reason != "" && p.Phase == "" {
		return nil, p.Reason
	}
	return &p, ""
}

// runCampaignReport writes a campaign's HTML report: its organizations
// (from the campaign's input, in the workflow's history) with each one's
// result or progress. It needs Temporal; the staging store is not read.
func runCampaignReport(ctx context.Context, name, address, out string) error {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return fmt.Errorf("temporal client settings: %w", err)
	}
	if address != "" {
		opts.HostPort = address
	}
	opts.HostPort = orDefault(opts.HostPort, client.DefaultHostPort)
	src := source{options: opts}
	// A demo or serve may run on an alias of the address (see reportSource).
	if s, _ := lookupSession(opts.HostPort); s != nil {
		src.options.HostPort = s.Address
	}
	c, err := src.dialQuick(ctx)
	if err != nil {
		return fmt.Errorf("report --campaign %s: a campaign's report needs Temporal: %w", name, err)
	}
	defer c.Close()
	cc, err := clientCodec(src.config, src.options.HostPort)
	if err != nil {
		return fmt.Errorf("report --campaign %s: %w", name, err)
	}
	camp, err := campaignReport(ctx, c, cc.DataConverter(), name)
	if err != nil {
		return fmt.Errorf("report --campaign %s: %w", name, err)
	}
	return writeReport(out, func(w io.Writer) (string, error) {
		return "", camp.Render(w)
	}, func(string) string {
		return fmt.Sprintf("campaign %s: %d organizations from Temporal at %s", name, len(camp.Orgs), src.options.HostPort)
	})
}

// campaignCodesPerQuery bounds the organization codes in one visibility
// query.
const campaignCodesPerQuery = 100

func campaignReport(ctx context.Context, c client.Client, dc converter.DataConverter, name string) (*htmlreport.Campaign, error) {
	id := workflows.CampaignWorkflowID(name)
	var in workflows.CampaignInput
	if err := control.StartInput(ctx, c, id, "", dc, &in); err != nil {
		return nil, fmt.Errorf("%w (is the campaign's name right?)", err)
	}
	camp := &htmlreport.Campaign{Name: name}
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return nil, fmt.Errorf("describe workflow %s: %w", id, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		camp.Progress, err = control.CampaignProgress(ctx, c, name)
	} else {
		camp.Progress, err = control.CampaignResult(ctx, c, name)
	}
	if err != nil {
		return nil, fmt.Errorf("progress of workflow %s: %w", id, err)
	}
	days := map[string]string{}
	if plan, err := in.Plan(); err == nil {
		for _, a := range plan.Orgs {
			days[a.Code] = a.Day.String()
		}
	}
	byCode := map[string]workflows.Progress{}
	for i := 0; i < len(in.Organizations); i += campaignCodesPerQuery {
		var codes []string
		for _, o := range in.Organizations[i:min(i+campaignCodesPerQuery, len(in.Organizations))] {
			codes = append(codes, o.Code)
		}
		ps, _, err := control.ListStatus(ctx, c, control.StatusFilter{Codes: codes}, false)
		if err != nil {
			return nil, fmt.Errorf("organizations of campaign %s: %w", name, err)
		}
		for _, p := range ps {
			byCode[p.Organization] = p
		}
	}
	for _, o := range in.Organizations {
		row := htmlreport.CampaignOrg{Code: o.Code, Name: o.Name, Wave: o.Wave, Day: days[o.Code], Mailboxes: o.Mailboxes}
		if p, ok := byCode[o.Code]; ok {
			row.Progress = &p
		}
		camp.Orgs = append(camp.Orgs, row)
	}
	return camp, nil
}
