package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/mailshift/mailshift/internal/profile"
	"github.com/mailshift/mailshift/internal/transfer"
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
	if _, err := transfer.ParseLevel(in.Policy.Validation); err != nil {
		return fmt.Errorf("organization %s: policy: %w", in.Code, err)
	}
	if in.Policy.TargetLanguage != "" || len(in.Policy.TargetFolders) > 0 {
		if _, err := profile.Folders(in.Policy.TargetLanguage, in.Policy.TargetFolders); err != nil {
			return fmt.Errorf("organization %s: policy: %w", in.Code, err)
		}
	}
	if in.Policy.TargetQuotaBytes < 0 {
		return fmt.Errorf("organization %s: policy: target_quota_bytes %d is negative", in.Code, in.Policy.TargetQuotaBytes)
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

// Control arguments note the fields they do not have, and validators
// refuse them by name: a misspelled "operatr" must not leave a control
// without the person it was meant to record. Decoding itself stays
// lenient, so what a run stored before (Progress, histories) decodes as
// ever, and the refusal is a validator's: typed and non-retryable.

func (a *Approval) UnmarshalJSON(b []byte) error {
	type plain Approval
	return decodeNoting(b, (*plain)(a), &a.unknown)
}

func (c *MailboxControl) UnmarshalJSON(b []byte) error {
	type plain MailboxControl
	return decodeNoting(b, (*plain)(c), &c.unknown)
}

func (r *AddMailboxesRequest) UnmarshalJSON(b []byte) error {
	type plain AddMailboxesRequest
	return decodeNoting(b, (*plain)(r), &r.unknown)
}

func (r *ConcurrencyRequest) UnmarshalJSON(b []byte) error {
	type plain ConcurrencyRequest
	return decodeNoting(b, (*plain)(r), &r.unknown)
}

// decodeNoting decodes b into v and notes in *unknown, sorted, the fields
// of b that v has no field for.
func decodeNoting(b []byte, v any, unknown *[]string) error {
	*unknown = nil
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil {
		return nil // not an object: Unmarshal above took it (null)
	}
	known := jsonFields(v)
	for f := range fields {
		if !slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, f) }) {
			*unknown = append(*unknown, f)
		}
	}
	slices.Sort(*unknown)
	return nil
}

// strictArgs refuses a control argument with fields it does not have.
func strictArgs(unknown []string, v any) error {
	if len(unknown) == 0 {
		return nil
	}
	return refused("unknown field %q (the fields are: %s)", unknown[0], strings.Join(jsonFields(v), ", "))
}

// jsonFields lists the JSON names of a struct's fields, for the error.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
