*** Settings ***
Documentation     Acceptance tests of the keyword libraries themselves, against the testbed.
...
...               Starts the embedded testbed once when it is the target and none is running
...               (also under pabot), and stops it at the end if this run started it.
...               Against a real stack it checks that the configured services answer.

Library           pabot.PabotLib
Resource          ../resources/xnai.resource

Suite Setup       Run Setup Only Once    Prepare Target
Suite Teardown    Run Teardown Only Once    Stop Testbed If Robot Started It
