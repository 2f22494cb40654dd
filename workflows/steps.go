package workflows

import "go.temporal.io/sdk/workflow"

// step is a position inside a phase of several steps. Its value is carried
// by continue-as-new (OrganizationState.Step): never rename one.
type step string

const (
	stepNone step = ""
	// Readiness checks pages of mailboxes (readinessBatches).
	stepReadiness step = "readiness"
	// Pre-stage copies every mailbox, then archives them.
	stepPreStage step = "prestage"
	stepArchive  step = "archive"
	// Cutover: final pass, staged imports, routing switch, post-switch
	// pass, and the routing of failed direct mailboxes back to the source.
	stepFinal               step = "final"
	stepImport              step = "import"
	stepSwitch              step = "switch"
	stepPostSwitch          step = "post-switch"
	stepRestoreFailedDirect step = "restore-failed-direct"
	// Unchanged mailboxes are checked again before the final pass and
	// after the switch (versionSealed).
	stepRecheckFinal    step = "recheck-final"
	stepRecheckSwitched step = "recheck-switched"
	// Rollback reverts the routing switch a page at a time.
	stepRevert step = "revert"
)

// steps is where a run is inside a phase: the step, and a mailbox index
// inside a step that walks the inventory (readiness pages, routing).
type steps struct {
	at     step
	cursor int
}

// enter puts the run in step s, at the start of its walk unless it is
// there already (an earlier run continued as new inside it); fresh says
// whether it was not.
func (s *steps) enter(st step) (fresh bool) {
	if s.at == st {
		return false
	}
	*s = steps{at: st}
	return true
}

// in: the run is inside step st.
func (s *steps) in(st step) bool { return s.at == st }

// clear leaves the step, its walk done.
func (s *steps) clear() { *s = steps{} }

// position is the next mailbox index the step's walk reaches.
func (s *steps) position() int { return s.cursor }

// moveTo sets the walk's next mailbox index.
func (s *steps) moveTo(i int) { s.cursor = i }

// stepFunc is one step of a phase.
type stepFunc struct {
	name step
	do   func(workflow.Context) error
}

// runSteps runs a phase's steps in order, from the one an earlier run was
// in when it continued as new. A rollback or a terminal phase stops it
// where it is; the phase then is not done.
func (o *organization) runSteps(ctx workflow.Context, all ...stepFunc) (done bool, err error) {
	for i, st := range all {
		if !o.steps.in(stepNone) && !o.steps.in(st.name) {
			continue // done by an earlier run
		}
		o.steps.at = st.name
		if err := st.do(ctx); err != nil {
			return false, err
		}
		if o.rollingBack() || o.p.Phase.Terminal() {
			return false, nil
		}
		o.steps.at = stepNone
		if i+1 < len(all) {
			o.steps.at = all[i+1].name
		}
	}
	o.steps.at = stepNone
	return true, nil
}
