package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// ValidateOrganizationInput reports the first problem with an input, naming
// the field or mailbox; the starter calls it too, before starting anything.
func ValidateOrganizationInput(in OrganizationInput) error {
	if in.Code == "" {
		return errors.New("organization code is empty")
	}
	if strings.ContainsAny(in.Code, "/ \t") {
		return fmt.Errorf("organization code %q must not contain '/' or spaces", in.Code)
	}
	if in.SourceEndpoint == "" || in.TargetEndpoint == "" {
		return fmt.Errorf("organization %s: source and target endpoint names are required", in.Code)
	}
	switch {
	case len(in.Mailboxes) == 0 && in.Inventory == nil:
		return fmt.Errorf("organization %s: no mailboxes", in.Code)
	case len(in.Mailboxes) > 0 && in.Inventory != nil:
		return fmt.Errorf("organization %s: give mailboxes or inventory, not both", in.Code)
	case in.Inventory != nil && (in.Inventory.Object == "" || in.Inventory.Count <= 0):
		return fmt.Errorf("organization %s: inventory reference %+v names no object or no mailboxes", in.Code, *in.Inventory)
	}
	seen := map[string]bool{}
	for i, m := range in.Mailboxes {
		if err := ValidateMailboxSpec(m); err != nil {
			return fmt.Errorf("organization %s: mailbox %d: %w", in.Code, i+1, err)
		}
		key := strings.ToLower(m.Address)
		if seen[key] {
			return fmt.Errorf("organization %s: mailbox %s is listed twice", in.Code, m.Address)
		}
		seen[key] = true
	}
	if in.ReadinessThreshold < 0 || in.ReadinessThreshold > 1 {
		return fmt.Errorf("organization %s: readiness threshold %v is outside 0..1", in.Code, in.ReadinessThreshold)
	}
	switch in.Approval {
	case "", ApprovalAuto, ApprovalManual:
	default:
		return fmt.Errorf("organization %s: approval %q is not auto or manual", in.Code, in.Approval)
	}
	if in.Concurrency < 0 || in.Concurrency > MaxConcurrency {
		return fmt.Errorf("organization %s: concurrency %d is outside 1..%d", in.Code, in.Concurrency, MaxConcurrency)
	}
	if in.DeltaInterval < 0 {
		return fmt.Errorf("organization %s: delta interval %v is negative", in.Code, in.DeltaInterval)
	}
	if in.DirectMaxBytes < 0 {
		return fmt.Errorf("organization %s: direct_max_bytes %d is negative", in.Code, in.DirectMaxBytes)
	}
	if in.MailboxesPerRun < 0 {
		return fmt.Errorf("organization %s: mailboxes per run %d is negative", in.Code, in.MailboxesPerRun)
	}
	if in.CutoverWindow != "" {
		if _, err := parseCutoverWindow(in.CutoverWindow); err != nil {
			return fmt.Errorf("organization %s: cutover window: %w", in.Code, err)
		}
	}
	return nil
}

// ValidateMailboxSpec checks one inventory row.
func ValidateMailboxSpec(m MailboxSpec) error {
	switch {
	case m.Address == "" || !strings.Contains(m.Address, "@"):
		return fmt.Errorf("address %q is not an e-mail address", m.Address)
	case m.SourceUser == "" || m.TargetUser == "":
		return fmt.Errorf("mailbox %s: source_user and target_user are required", m.Address)
	}
	return nil
}

// ValidateCampaignName checks that a name makes a workflow id of its own.
func ValidateCampaignName(name string) error {
	switch {
	case name == "":
		return errors.New("campaign name is empty")
	case strings.ContainsAny(name, "/ \t\n"):
		return fmt.Errorf("campaign name %q must not contain '/' or spaces", name)
	}
	return nil
}

// ValidateCampaignInput reports the first problem with an input, naming
// the organization at fault. It does not plan (see CampaignInput.Plan).
func ValidateCampaignInput(in CampaignInput) error {
	if err := ValidateCampaignName(in.Name); err != nil {
		return err
	}
	switch {
	case len(in.Organizations) == 0:
		return fmt.Errorf("campaign %s has no organizations", in.Name)
	case in.MaxRunning < 0 || in.MaxRunning > MaxCampaignRunning:
		return fmt.Errorf("campaign %s: max running %d is outside 1..%d", in.Name, in.MaxRunning, MaxCampaignRunning)
	case in.OrgsPerRun < 0:
		return fmt.Errorf("campaign %s: organizations per run %d is negative", in.Name, in.OrgsPerRun)
	}
	for i, o := range in.Organizations {
		if err := ValidateOrganizationInput(in.OrgInput(o)); err != nil {
			return fmt.Errorf("campaign %s: organization %d: %w", in.Name, i+1, err)
		}
		if n := in.OrgInput(o).MailboxCount(); o.Mailboxes != n {
			return fmt.Errorf("campaign %s: organization %s: %d mailboxes planned but %d given", in.Name, o.Code, o.Mailboxes, n)
		}
	}
	return nil
}

// Control arguments are decoded strictly: a misspelled field ("operatr")
// is refused with its name instead of being dropped, which would leave
// the control without the person or reason it was meant to record. The
// SDK refuses an update whose argument does not decode before its
// validator runs, so nothing reaches history.

func (a *Approval) UnmarshalJSON(b []byte) error {
	type plain Approval
	return decodeStrict(b, (*plain)(a))
}

func (c *MailboxControl) UnmarshalJSON(b []byte) error {
	type plain MailboxControl
	return decodeStrict(b, (*plain)(c))
}

func (r *ConcurrencyRequest) UnmarshalJSON(b []byte) error {
	type plain ConcurrencyRequest
	return decodeStrict(b, (*plain)(r))
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w (the fields are: %s)", err, strings.Join(jsonFields(v), ", "))
	}
	if d.More() {
		return errors.New("one JSON object expected")
	}
	return nil
}

// jsonFields lists the JSON names of a struct's fields, for the error.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
