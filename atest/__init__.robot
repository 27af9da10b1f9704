*** Settings ***
Documentation     Acceptance tests of the keyword libraries themselves, against the testbed.
...
...               Starts the embedded testbed when none is running and stops it at the end if this
...               run started it (under pabot: one testbed per process).

Resource          ../resources/xnai.resource

Suite Setup       Prepare Target
Suite Teardown    Stop Testbed If Robot Started It
