package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailshift/mailshift/workflows"
)

func TestMailboxIDPrintsTheWorkflowIDOfEachUser(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, runMailboxID(&out, []string{"Alice@RXH.example", "--target", "exo", "bob@rxh.example"}))
	require.Equal(t, "Alice@RXH.example\t"+workflows.MailboxWorkflowID("exo", "alice@rxh.example")+"\n"+
		"bob@rxh.example\t"+workflows.MailboxWorkflowID("exo", "bob@rxh.example")+"\n", out.String())
	require.Error(t, runMailboxID(&out, nil))
}
