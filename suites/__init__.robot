*** Settings ***
Documentation     The XNAi acceptance suite.
...
...               Starts the embedded testbed when it is the target and none is running, and stops it
...               at the end if this run started it. Under pabot each process has a testbed of its own
...               (ports 100 apart), so suites never disturb each other. Against a real stack it checks
...               that the configured services answer.

Resource          ../resources/xnai.resource

Suite Setup       Prepare Target
Suite Teardown    Stop Testbed If Robot Started It
