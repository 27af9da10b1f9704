*** Settings ***
Documentation    Vikunja integration: the task service's token auth, the project and task routes XNAi
...              calls, what PostgreSQL stores, and recovery from a database restart.
...
...              Testbed defects this suite catches: ``tasks-token-not-checked``, ``tasks-wrong-project``,
...              ``tasks-no-reconnect``, ``tasks-info-needs-token``, ``tasks-delete-ignored``,
...              ``tasks-all-first-project-only``.

Resource         ../resources/xnai.resource

Suite Setup      Open Target Sessions
Test Teardown    Remove All Faults
Test Timeout     ${TEST_TIMEOUTS}[functional]

Test Tags        vikunja    P1    requires:vikunja


*** Test Cases ***
Info Is Open Without A Token
    [Tags]    catches:tasks-info-needs-token
    ${info}    Get Task Service Info
    Should Not Be Empty    ${info}[version]

A Missing Token Is Refused
    [Tags]    catches:tasks-token-not-checked
    Task Service Should Refuse    missing

An Invalid Token Is Refused
    [Tags]    catches:tasks-token-not-checked
    Task Service Should Refuse    invalid

A Valid Token Is Accepted
    Task Request Should Answer    200

A Task Lands In The Project It Was Created In
    [Documentation]    With two projects, a task created in the second is stored in the second.
    [Tags]    requires:vikunja-db    catches:tasks-wrong-project
    Create Project
    ${second}    Create Project
    ${task}    Create Task    ${second}
    Task Should Belong To    ${task}    ${second}
    ${tasks}    Get Project Tasks    ${second}
    Should Contain    ${tasks}    ${task}

Tasks Can Be Read, Updated And Deleted
    [Tags]    catches:tasks-delete-ignored
    ${project}    Create Project
    ${task}    Create Task    ${project}    Draft the KG-4 report
    ${read}    Get Task    ${task}
    Should Be Equal    ${read}[title]    Draft the KG-4 report
    ${done}    Update Task    ${task}    done=${True}
    Should Be True    ${done}[done]
    Delete Task    ${task}
    Get Task    ${task}    expected_status=404

All Tasks Lists Every Project's Tasks
    [Documentation]    ``/api/v1/tasks/all`` is what XNAi's own integration reads.
    [Tags]    catches:tasks-all-first-project-only
    ${project}    Create Project
    ${task}    Create Task    ${project}
    ${all}    Get All Tasks
    Should Contain    ${all}    ${task}

Tasks Are Served Through The Gateway
    [Documentation]    Where the gateway routes the task service (older Caddyfiles: ``/vikunja/``).
    [Tags]    requires:vikunja-gateway    catches:tasks-all-first-project-only
    ${project}    Create Project
    ${task}    Create Task    ${project}
    ${all}    Get All Tasks    via=gateway
    Should Contain    ${all}    ${task}

The Task Service Reconnects After A Database Restart
    [Documentation]    The first request after PostgreSQL is back must succeed: the service re-opens its
    ...    connection by itself, without waiting for the health monitor.
    [Tags]    destructive    requires:service-control    catches:tasks-no-reconnect
    Restart Service    postgres
    Task Request Should Answer    200
